"""Hugging Face BERT directories: loading against the NumPy BERT, the report, saving, transformers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import google_ckpt
import hf_ckpt
import numpy_bert
from bert_tf import BertClassifier, BertConfig, BertEncoder, BertPretrainer
from bert_tf.checkpoints import CheckpointError, CheckpointMismatchError
from bert_tf.checkpoints.hf_names import config_from_hf
from bert_tf.checkpoints.huggingface import (build_from_hf, load_hf_weights, read_hf_directory,
                                             save_hf)
from bert_tf.config import ConfigError

EPS = 1e-7  # not Google's 1e-12: proves layer_norm_eps is read
GOOGLE_CONFIG = google_ckpt.tiny_config(hidden_act="gelu_exact", layer_norm_eps=EPS)
IDS = np.array([[2, 7, 8, 9, 4, 3, 0, 0], [2, 11, 12, 4, 3, 13, 14, 3]], np.int32)
MASK = (IDS > 0).astype(np.int32)
TYPES = np.array([[0] * 8, [0, 0, 0, 0, 0, 1, 1, 1]], np.int32)
POSITIONS = np.array([[4, 1], [3, 2]], np.int32)


def _inputs():
    return {"input_word_ids": IDS, "input_mask": MASK, "input_type_ids": TYPES}


def _reference(arrays):
    return numpy_bert.bert_forward(arrays, GOOGLE_CONFIG, IDS, MASK, TYPES)


def _write(tmp_path, name, arrays, architecture, prefix="bert.", **config_overrides):
    config = hf_ckpt.hf_config(GOOGLE_CONFIG, architecture, layer_norm_eps=EPS,
                               **config_overrides)
    return hf_ckpt.write_hf_directory(str(tmp_path / name), config,
                                      hf_ckpt.to_hf_tensors(arrays, prefix))


@pytest.fixture(scope="module")
def arrays():
    return google_ckpt.random_google_arrays(GOOGLE_CONFIG, num_classifier_labels=3, seed=3)


def _heads(arrays, *names):
    return {k: v for k, v in arrays.items()
            if k.startswith("bert/") or any(k.startswith(n) for n in names)}


def test_pretraining_directory_matches_numpy_bert(tmp_path, arrays):
    directory = _write(tmp_path, "pt", _heads(arrays, "cls/"), "BertForPreTraining")
    model = build_from_hf(BertPretrainer, directory)
    assert model.config.hidden_act == "gelu_exact" and model.config.layer_norm_eps == EPS
    out = model({**_inputs(), "masked_lm_positions": POSITIONS})
    ref = _reference(arrays)
    np.testing.assert_allclose(out["sequence_output"], ref["sequence_output"], atol=2e-5)
    np.testing.assert_allclose(out["pooled_output"], ref["pooled_output"], atol=2e-5)
    log_probs = numpy_bert.masked_lm_log_probs(arrays, GOOGLE_CONFIG, ref["sequence_output"],
                                               POSITIONS)
    mlm = out["masked_lm_logits"].numpy()
    np.testing.assert_allclose(mlm - np.log(np.exp(mlm).sum(-1, keepdims=True)), log_probs,
                               atol=5e-5)
    np.testing.assert_allclose(out["next_sentence_logits"],
                               numpy_bert.next_sentence_logits(arrays, ref["pooled_output"]),
                               atol=2e-5)


def test_bare_encoder_keys_old_layer_norm_names_and_buffers(tmp_path, arrays):
    tensors = hf_ckpt.to_hf_tensors(_heads(arrays), prefix="")
    tensors = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in tensors.items()}
    tensors["embeddings.position_ids"] = np.arange(40, dtype=np.int64)[None]
    config = hf_ckpt.hf_config(GOOGLE_CONFIG, "BertModel", layer_norm_eps=EPS)
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "bare"), config, tensors)
    encoder = BertEncoder(read_hf_directory(directory).config)
    report = load_hf_weights(encoder, directory)
    assert report.ok and report.skipped_training_state == 1 and not report.newly_initialized
    assert len(report.loaded) == len(encoder.weights)
    np.testing.assert_allclose(encoder(_inputs())["sequence_output"],
                               _reference(arrays)["sequence_output"], atol=2e-5)


def test_classifier_labels_and_logits(tmp_path, arrays):
    labels = ["negative", "neutral", "positive"]
    directory = _write(tmp_path, "cls", _heads(arrays, "output_"),
                       "BertForSequenceClassification",
                       id2label={str(i): name for i, name in enumerate(labels)})
    assert read_hf_directory(directory).labels == labels
    model = build_from_hf(BertClassifier, directory)
    assert model.num_classes == 3
    ref = numpy_bert.classifier_logits(arrays, _reference(arrays)["pooled_output"])
    np.testing.assert_allclose(model(_inputs()), ref, atol=2e-5)


def test_masked_lm_without_pooler_tied_decoder_copies(tmp_path, arrays, caplog):
    mlm = {k: v for k, v in _heads(arrays, "cls/predictions").items()
           if not k.startswith("bert/pooler")}
    tensors = hf_ckpt.to_hf_tensors(mlm)
    tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    config = hf_ckpt.hf_config(GOOGLE_CONFIG, "BertForMaskedLM", layer_norm_eps=EPS)
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "mlm"), config, tensors)
    encoder = BertEncoder(read_hf_directory(directory).config)
    report = load_hf_weights(encoder, directory)
    assert sorted(report.newly_initialized) == ["bert.pooler.dense.bias",
                                                "bert.pooler.dense.weight"]
    assert len(report.unused) == 5 and report.ok  # the masked-LM head an encoder lacks
    assert "pooler" in caplog.text
    # An untied decoder cannot be represented: refused, not silently dropped.
    tensors["cls.predictions.decoder.weight"] = tensors[
        "cls.predictions.decoder.weight"] + 1.0
    hf_ckpt.write_hf_directory(directory, config, tensors)
    with pytest.raises(CheckpointError, match="untied"):
        load_hf_weights(BertPretrainer(read_hf_directory(directory).config), directory)


def test_strict_report_lists_every_difference(tmp_path, arrays):
    tensors = hf_ckpt.to_hf_tensors(_heads(arrays, "cls/"))
    del tensors["bert.encoder.layer.1.output.dense.bias"]
    tensors["bert.encoder.layer.2.output.dense.bias"] = np.zeros(32, np.float32)
    tensors["bert.embeddings.word_embeddings.weight"] = np.zeros((98, 32), np.float32)
    config = hf_ckpt.hf_config(GOOGLE_CONFIG, "BertForPreTraining", layer_norm_eps=EPS)
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "bad"), config, tensors)
    with pytest.raises(CheckpointMismatchError) as info:
        load_hf_weights(BertPretrainer(read_hf_directory(directory).config), directory)
    report = info.value.report
    assert report.missing == ["bert.encoder.layer.1.output.dense.bias"]
    assert report.unexpected == ["bert.encoder.layer.2.output.dense.bias"]
    assert report.mismatched == [("bert.embeddings.word_embeddings.weight", (98, 32), (99, 32))]
    assert "bert.encoder.layer.1.output.dense.bias" in str(info.value)


def test_pickled_weights_are_refused(tmp_path, arrays):
    directory = _write(tmp_path, "pickle", _heads(arrays), "BertModel", prefix="")
    os.rename(os.path.join(directory, "model.safetensors"),
              os.path.join(directory, "pytorch_model.bin"))
    with pytest.raises(CheckpointError, match="pickle.*safe_serialization"):
        build_from_hf(BertEncoder, directory)


def test_config_and_tokenizer_mapping(tmp_path, arrays):
    base = hf_ckpt.hf_config(GOOGLE_CONFIG, "BertModel")
    assert config_from_hf(base, "c").hidden_act == "gelu_exact"
    for tanh in ("gelu_new", "gelu_pytorch_tanh"):
        assert config_from_hf({**base, "hidden_act": tanh}, "c").hidden_act == "gelu"
    with pytest.raises(ConfigError, match="'hidden_act'.*silu"):
        config_from_hf({**base, "hidden_act": "silu"}, "c.json")
    with pytest.raises(ConfigError, match="position_embedding_type"):
        config_from_hf({**base, "position_embedding_type": "relative_key"}, "c.json")
    cased = hf_ckpt.write_hf_directory(str(tmp_path / "cased"), base, {}, do_lower_case=False)
    assert read_hf_directory(cased).do_lower_case is False
    odd = hf_ckpt.write_hf_directory(str(tmp_path / "odd"), base, {}, do_lower_case=True,
                                     strip_accents=False)
    with pytest.raises(ConfigError, match="strip_accents"):
        read_hf_directory(odd)


def test_save_then_load_round_trip_is_exact(tmp_path):
    config = BertConfig.from_dict(google_ckpt.tiny_config())  # tanh GELU → HF "gelu_new"
    model = BertPretrainer(config)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in hf_ckpt.vocab_tokens(99)))
    out = save_hf(model, str(tmp_path / "hf"), vocab_file=str(vocab), do_lower_case=False)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors",
                                       "special_tokens_map.json", "tokenizer_config.json",
                                       "vocab.txt"]
    hf_config = json.loads(open(os.path.join(out, "config.json")).read())
    assert hf_config["hidden_act"] == "gelu_new"
    assert hf_config["architectures"] == ["BertForPreTraining"]
    directory = read_hf_directory(out)
    assert directory.do_lower_case is False and directory.config == config
    again = build_from_hf(BertPretrainer, out)
    for a, b in zip(model.weights, again.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.path


TRANSFORMERS = hf_ckpt.transformers_or_none()


@pytest.mark.skipif(TRANSFORMERS is None,
                    reason="transformers/torch not installed (bench extra)")
def test_transformers_loads_what_we_write_and_we_load_what_it_writes(tmp_path, arrays):
    import torch
    transformers = TRANSFORMERS
    config = BertConfig.from_dict(GOOGLE_CONFIG)
    ours = BertClassifier(config, num_classes=3)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in hf_ckpt.vocab_tokens(99)))
    out = save_hf(ours, str(tmp_path / "ours"), vocab_file=str(vocab), labels=["a", "b", "c"])
    theirs = transformers.BertForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        logits = theirs(input_ids=torch.tensor(IDS, dtype=torch.long),
                        attention_mask=torch.tensor(MASK), token_type_ids=torch.tensor(
                            TYPES, dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(ours(_inputs()), logits, atol=1e-5)
    pretraining = transformers.BertForPreTraining(theirs.config).eval()
    pretraining.save_pretrained(str(tmp_path / "theirs"))
    for name in ("vocab.txt",):
        os.link(os.path.join(out, name), str(tmp_path / "theirs" / name))
    model = build_from_hf(BertPretrainer, str(tmp_path / "theirs"))
    with torch.no_grad():
        ref = pretraining(input_ids=torch.tensor(IDS, dtype=torch.long),
                          attention_mask=torch.tensor(MASK),
                          token_type_ids=torch.tensor(TYPES, dtype=torch.long))
    got = model({**_inputs(), "masked_lm_positions": np.tile(np.arange(8), (2, 1))})
    np.testing.assert_allclose(got["masked_lm_logits"], ref.prediction_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(got["next_sentence_logits"],
                               ref.seq_relationship_logits.numpy(), atol=1e-5)


def test_layer_norm_eps_field():
    config = BertConfig.from_dict(google_ckpt.tiny_config())
    assert config.layer_norm_eps == 1e-12 and "layer_norm_eps" not in config.to_dict()
    custom = BertConfig.from_dict(google_ckpt.tiny_config(layer_norm_eps=1e-5))
    assert custom.to_dict()["layer_norm_eps"] == 1e-5
    assert BertConfig.from_dict(custom.to_dict()) == custom
    with pytest.raises(ConfigError, match="'layer_norm_eps'"):
        BertConfig.from_dict(google_ckpt.tiny_config(layer_norm_eps=0))
    encoder = BertEncoder(custom)
    assert encoder.embeddings.layer_norm.epsilon == 1e-5
    assert encoder.transformer_blocks[0]._feedforward_layer_norm.epsilon == 1e-5
