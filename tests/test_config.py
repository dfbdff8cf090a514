"""BertConfig: Google's defaults, the shipped configs, extra keys, and precise ConfigErrors."""

from __future__ import annotations

import json
import os

import pytest

import shared_data
from bert_tf import BertConfig, ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "configs")
GOOGLE_INDEX_DIR = str(shared_data.GOOGLE_CKPT_INDEX)
CHINESE_CONFIG = os.path.join(GOOGLE_INDEX_DIR, "chinese_L-12_H-768_A-12", "bert_config.json")

VALID = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}


def _write(tmp_path, content, name="bert_config.json") -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- defaults


def test_google_defaults():
    config = BertConfig(vocab_size=30522)
    assert config.hidden_size == 768
    assert config.num_hidden_layers == 12
    assert config.num_attention_heads == 12
    assert config.intermediate_size == 3072
    assert config.hidden_act == "gelu"
    assert config.hidden_dropout_prob == 0.1
    assert config.attention_probs_dropout_prob == 0.1
    assert config.max_position_embeddings == 512
    assert config.type_vocab_size == 16  # Google's BertConfig default (released configs say 2)
    assert config.initializer_range == 0.02
    assert config.extra == {}
    assert config.head_size == 64


def test_to_dict_has_google_field_names_only():
    config = BertConfig(vocab_size=100, hidden_size=32, num_attention_heads=4)
    assert config.to_dict() == {
        "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 12, "num_attention_heads": 4,
        "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
        "type_vocab_size": 16, "initializer_range": 0.02,
    }
    assert config.head_size == 8


# --------------------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("name, layers, hidden, heads", [
    ("tiny", 2, 128, 2),
    ("mini", 4, 256, 4),
    ("small", 4, 512, 8),
    ("medium", 8, 512, 8),
    ("base", 12, 768, 12),
    ("large", 24, 1024, 16),
])
def test_shipped_configs(name, layers, hidden, heads):
    path = os.path.join(CONFIG_DIR, f"bert_{name}.json")
    config = BertConfig.from_json_file(path)
    assert config.num_hidden_layers == layers
    assert config.hidden_size == hidden
    assert config.num_attention_heads == heads
    assert config.intermediate_size == 4 * hidden
    assert config.vocab_size == 30522
    assert config.type_vocab_size == 2
    assert config.max_position_embeddings == 512
    assert config.hidden_act == "gelu"
    assert config.hidden_dropout_prob == 0.1
    assert config.attention_probs_dropout_prob == 0.1
    assert config.initializer_range == 0.02
    assert config.extra == {}
    assert config.source == path
    # The file holds exactly Google's fields.
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == config.to_dict()


def test_json_round_trip(tmp_path):
    config = BertConfig.from_dict(dict(VALID, hidden_act="relu", hidden_dropout_prob=0.0))
    path = str(tmp_path / "out.json")
    config.to_json_file(path)
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == dict(VALID, hidden_act="relu", hidden_dropout_prob=0.0)
    again = BertConfig.from_json_file(path)
    assert again == config
    assert again.to_json_string() == config.to_json_string()


@pytest.mark.skipif(not os.path.exists(CHINESE_CONFIG), reason="shared Google index data absent")
def test_chinese_config_extra_keys_round_trip(tmp_path):
    config = BertConfig.from_json_file(CHINESE_CONFIG)
    assert config.vocab_size == 21128
    assert config.num_hidden_layers == 12 and config.hidden_size == 768
    assert config.type_vocab_size == 2
    assert config.extra["directionality"] == "bidi"
    assert config.extra["pooler_type"] == "first_token_transform"
    assert config.extra["pooler_fc_size"] == 768
    assert config.extra["pooler_num_fc_layers"] == 3
    assert config.extra["pooler_size_per_head"] == 128
    assert config.extra["pooler_num_attention_heads"] == 12
    with open(CHINESE_CONFIG, encoding="utf-8") as f:
        original = json.load(f)
    assert config.to_dict() == original
    out = str(tmp_path / "bert_config.json")
    config.to_json_file(out)
    with open(out, encoding="utf-8") as f:
        assert json.load(f) == original
    assert BertConfig.from_json_file(out) == config


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope" / "bert_config.json")
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    assert path in str(e.value)
    assert "not found" in str(e.value)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = _write(tmp_path, '{\n  "vocab_size": 10,\n  "hidden_size": ,\n}\n')
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    message = str(e.value)
    assert path in message
    assert "line 3" in message
    assert "column 18" in message


def test_not_an_object(tmp_path):
    path = _write(tmp_path, "[1, 2, 3]")
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    assert path in str(e.value)
    assert "object" in str(e.value)


def test_missing_vocab_size(tmp_path):
    values = dict(VALID)
    del values["vocab_size"]
    path = _write(tmp_path, values)
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    assert path in str(e.value)
    assert "vocab_size" in str(e.value)


@pytest.mark.parametrize("field, value, words", [
    ("hidden_size", "768", ["integer", "'768'"]),
    ("num_hidden_layers", True, ["integer", "True"]),
    ("vocab_size", 3.0, ["integer"]),
    ("num_attention_heads", -4, ["positive", "-4"]),
    ("intermediate_size", 0, ["positive", "0"]),
    ("max_position_embeddings", None, ["integer"]),
    ("hidden_dropout_prob", 1.0, ["[0, 1)", "1.0"]),
    ("attention_probs_dropout_prob", -0.1, ["[0, 1)", "-0.1"]),
    ("hidden_dropout_prob", "0.1", ["number"]),
    ("initializer_range", 0.0, ["positive"]),
    ("hidden_act", "swish", ["'swish'", "gelu_exact", "relu"]),
])
def test_invalid_field_names_file_and_field(tmp_path, field, value, words):
    path = _write(tmp_path, dict(VALID, **{field: value}))
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    message = str(e.value)
    assert path in message
    assert f"'{field}'" in message
    for word in words:
        assert word in message


def test_hidden_size_not_divisible_by_heads(tmp_path):
    path = _write(tmp_path, dict(VALID, hidden_size=30, num_attention_heads=4))
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    message = str(e.value)
    assert path in message
    assert "hidden_size" in message and "num_attention_heads" in message
    assert "30" in message and "4" in message


def test_direct_construction_errors_name_the_field():
    with pytest.raises(ConfigError, match="'num_attention_heads'.*positive"):
        BertConfig(vocab_size=10, num_attention_heads=0)
    with pytest.raises(ConfigError, match="'hidden_size'.*integer"):
        BertConfig(vocab_size=10, hidden_size=False)
    with pytest.raises(ConfigError, match="'vocab_size'"):
        BertConfig.from_dict({"hidden_size": 32})
    # ConfigError is a ValueError so generic callers can catch it.
    assert issubclass(ConfigError, ValueError)


def test_dropout_zero_is_valid():
    config = BertConfig.from_dict(dict(VALID, hidden_dropout_prob=0, attention_probs_dropout_prob=0.0))
    assert config.hidden_dropout_prob == 0


@pytest.mark.parametrize("missing", ["hidden_size", "num_attention_heads", "intermediate_size",
                                     "type_vocab_size", "hidden_act"])
def test_missing_required_field_names_file_and_field(tmp_path, missing):
    # Before: a missing field silently took the class default (12 heads, 3072, 16 types, ...).
    path = _write(tmp_path, {k: v for k, v in VALID.items() if k != missing})
    with pytest.raises(ConfigError) as e:
        BertConfig.from_json_file(path)
    assert path in str(e.value) and f"'{missing}'" in str(e.value)


def test_missing_training_only_fields_take_googles_defaults(tmp_path):
    optional = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")
    config = BertConfig.from_json_file(
        _write(tmp_path, {k: v for k, v in VALID.items() if k not in optional}))
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob,
            config.initializer_range) == (0.1, 0.1, 0.02)


def test_with_vocab_size_and_atomic_write(tmp_path):
    config = BertConfig.from_dict(VALID).with_vocab_size(7)
    assert config.vocab_size == 7 and config.hidden_size == VALID["hidden_size"]
    config.to_json_file(tmp_path / "c.json")
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]
    assert BertConfig.from_json_file(tmp_path / "c.json") == config


def test_shipped_configs_resolve_by_name(tmp_path, monkeypatch):
    from bert_tf.config import CONFIGS_DIR, resolve_config_file, shipped_config_names

    assert {"bert_tiny", "bert_base", "bert_large"} <= set(shipped_config_names())
    monkeypatch.chdir(tmp_path)
    base = BertConfig.from_json_file("bert_base")
    assert (base.hidden_size, base.num_hidden_layers, base.vocab_size) == (768, 12, 30522)
    assert resolve_config_file("bert_tiny.json") == os.path.join(CONFIGS_DIR, "bert_tiny.json")
    (tmp_path / "bert_tiny").write_text(json.dumps(BertConfig(
        vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16).to_dict()))
    assert BertConfig.from_json_file("bert_tiny").vocab_size == 7  # a file of that name wins
    with pytest.raises(ConfigError, match=r"bert_config.json not found: bert_huge \(neither a "
                                          r"file nor one of the shipped configs: bert_base, "):
        BertConfig.from_json_file("bert_huge")
    with pytest.raises(ConfigError, match="not found: sub/bert_base"):
        BertConfig.from_json_file("sub/bert_base")
