"""Google TF1 checkpoints: names/shapes, bit-exact round trips, training state, and the errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import shared_data
from bert_tf import BertClassifier, BertConfig, BertEncoder, BertPretrainer
from bert_tf.checkpoints import (CheckpointError, CheckpointMismatchError,
                                 build_from_google_checkpoint, load_google_checkpoint,
                                 resolve_checkpoint, save_google_checkpoint)

GOOGLE_INDEX_DIR = str(shared_data.GOOGLE_CKPT_INDEX)
MINI_DIR = os.path.join(GOOGLE_INDEX_DIR, "uncased_L-4_H-256_A-4")
GENUINE = ["uncased_L-4_H-256_A-4", "uncased_L-8_H-512_A-8", "chinese_L-12_H-768_A-12",
           "chinese_wwm_L-12_H-768_A-12_hfl"]
DATA = ".data-00000-of-00001"

HEAD_NAMES = sorted([
    "cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
    "cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta",
    "cls/predictions/output_bias", "cls/seq_relationship/output_weights",
    "cls/seq_relationship/output_bias",
])


def _list(prefix: str) -> dict[str, tuple[int, ...]]:
    return {name: tuple(shape) for name, shape in tf.train.list_variables(prefix)}


def _assert_same_arrays(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), name


def _config(**overrides) -> BertConfig:
    return BertConfig.from_dict(google_ckpt.tiny_config(**overrides))


@pytest.fixture(scope="module")
def pretraining_ckpt(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("pretraining"))
    prefix = google_ckpt.write_google_checkpoint(directory, google_ckpt.tiny_config(), seed=7)
    return directory, prefix, google_ckpt.read_checkpoint_arrays(prefix)


# --------------------------------------------------------------------------- layout


@pytest.mark.skipif(not os.path.exists(os.path.join(MINI_DIR, "bert_model.ckpt.index")),
                    reason="shared Google index data absent")
def test_saved_layout_equals_genuine_google_index(tmp_path):
    config = BertConfig.from_json_file(os.path.join(MINI_DIR, "bert_config.json"))
    prefix = save_google_checkpoint(BertPretrainer(config), str(tmp_path))
    assert prefix == os.path.join(str(tmp_path), "bert_model.ckpt")
    ours = _list(prefix)
    genuine = _list(os.path.join(MINI_DIR, "bert_model.ckpt"))
    assert len(genuine) == 78
    assert sorted(ours) == sorted(genuine)
    for name, shape in genuine.items():
        assert ours[name] == shape, name
    reader = tf.train.load_checkpoint(prefix)
    assert all(dtype == tf.float32 for dtype in reader.get_variable_to_dtype_map().values())
    assert BertConfig.from_json_file(tmp_path / "bert_config.json") == config
    with open(tmp_path / "bert_config.json", encoding="utf-8") as f:
        assert json.load(f) == config.to_dict()


def test_saved_layout_equals_google_ckpt_layout(tmp_path):
    config = google_ckpt.tiny_config()
    expected = google_ckpt.expected_variable_shapes(config)
    prefix = save_google_checkpoint(BertPretrainer(BertConfig.from_dict(config)),
                                    str(tmp_path / "p" / "bert_model.ckpt"))
    assert _list(prefix) == expected
    # An encoder writes only bert/*; a classifier adds the top-level head.
    prefix = save_google_checkpoint(BertEncoder(BertConfig.from_dict(config)), str(tmp_path / "e") + os.sep)
    assert prefix == os.path.join(str(tmp_path / "e"), "bert_model.ckpt")
    assert _list(prefix) == google_ckpt.expected_variable_shapes(config, with_pretraining_heads=False)
    prefix = save_google_checkpoint(BertClassifier(BertConfig.from_dict(config), num_classes=5),
                                    str(tmp_path / "c" / "bert_model.ckpt"))
    assert _list(prefix) == google_ckpt.expected_variable_shapes(
        config, with_pretraining_heads=False, num_classifier_labels=5)


# --------------------------------------------------------------------------- round trips


def test_save_load_save_is_bit_exact(tmp_path):
    model = BertPretrainer(_config())
    first = save_google_checkpoint(model, str(tmp_path / "first"))
    loaded = build_from_google_checkpoint(BertPretrainer, str(tmp_path / "first"))
    second = save_google_checkpoint(loaded, str(tmp_path / "second"))
    a = google_ckpt.read_checkpoint_arrays(first)
    b = google_ckpt.read_checkpoint_arrays(second)
    _assert_same_arrays(a, b)
    # The values are the model's, reshaped not transposed: check one multi-head kernel.
    attention = model.encoder.transformer_blocks[1]._self_attention_layer
    np.testing.assert_array_equal(
        a["bert/encoder/layer_1/attention/self/query/kernel"],
        attention._query_dense.kernel.numpy().reshape(32, 32))
    np.testing.assert_array_equal(
        a["bert/encoder/layer_1/attention/output/dense/kernel"],
        attention._output_dense.kernel.numpy().reshape(32, 32))
    # Tied: the saved word embeddings are the ones the MLM head projects with.
    np.testing.assert_array_equal(a["bert/embeddings/word_embeddings"],
                                  model.masked_lm.token_embedding.embeddings.numpy())


def test_google_checkpoint_load_then_save_reproduces_it(pretraining_ckpt, tmp_path):
    directory, prefix, arrays = pretraining_ckpt
    model = build_from_google_checkpoint(BertPretrainer, directory)
    saved = save_google_checkpoint(model, str(tmp_path))
    _assert_same_arrays(google_ckpt.read_checkpoint_arrays(saved), arrays)


def test_fine_tuned_classifier_checkpoint_round_trip(tmp_path):
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(
        str(tmp_path / "in"), config, with_pretraining_heads=False, num_classifier_labels=4, seed=2)
    model = build_from_google_checkpoint(BertClassifier, prefix, num_classes=4)
    saved = save_google_checkpoint(model, str(tmp_path / "out"))
    _assert_same_arrays(google_ckpt.read_checkpoint_arrays(saved),
                        google_ckpt.read_checkpoint_arrays(prefix))


# --------------------------------------------------------------------------- training state


def test_adam_slots_and_global_step_are_skipped(tmp_path):
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(
        str(tmp_path), config, with_optimizer_slots=True, with_global_step=True, seed=4)
    arrays = google_ckpt.read_checkpoint_arrays(prefix)
    model = BertPretrainer(BertConfig.from_dict(config))
    report = load_google_checkpoint(model, prefix)
    num_trainable = len(google_ckpt.expected_variable_shapes(config))
    assert report.ok
    assert report.skipped_training_state == 2 * num_trainable + 1
    assert len(report.loaded) == num_trainable
    assert not any(n.endswith(("adam_m", "adam_v")) or n == "global_step" for n in report.loaded)
    assert report.unused == [] and report.newly_initialized == []
    # The model got the weights, not the Adam slots.
    np.testing.assert_array_equal(model.encoder.pooler.kernel.numpy(),
                                  arrays["bert/pooler/dense/kernel"])
    np.testing.assert_array_equal(model.next_sentence.output_weights.numpy(),
                                  arrays["cls/seq_relationship/output_weights"])


def test_save_writes_int64_global_step(tmp_path):
    model = BertEncoder(_config())
    prefix = save_google_checkpoint(model, str(tmp_path), global_step=7)
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    assert reader.get_variable_to_shape_map()["global_step"] == []
    assert int(reader.get_tensor("global_step")) == 7
    report = load_google_checkpoint(BertEncoder(_config()), prefix)
    assert report.skipped_training_state == 1
    assert report.ok
    # Without global_step there is none.
    other = save_google_checkpoint(model, str(tmp_path / "no_step"))
    assert "global_step" not in _list(other)


# --------------------------------------------------------------------------- heads


@pytest.fixture(scope="module")
def encoder_only_ckpt(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("encoder_only"))
    prefix = google_ckpt.write_google_checkpoint(directory, google_ckpt.tiny_config(),
                                                 with_pretraining_heads=False, seed=9)
    return directory, prefix, google_ckpt.read_checkpoint_arrays(prefix)


def test_encoder_only_checkpoint_into_encoder(encoder_only_ckpt):
    directory, prefix, arrays = encoder_only_ckpt
    encoder = BertEncoder(_config())
    report = load_google_checkpoint(encoder, prefix)
    assert report.ok and report.unused == [] and report.missing == []
    assert sorted(report.loaded) == sorted(arrays)
    np.testing.assert_array_equal(encoder.embeddings.word_embeddings.embeddings.numpy(),
                                  arrays["bert/embeddings/word_embeddings"])


def test_encoder_only_checkpoint_into_pretrainer(encoder_only_ckpt):
    directory, prefix, arrays = encoder_only_ckpt
    with pytest.raises(CheckpointMismatchError) as e:
        build_from_google_checkpoint(BertPretrainer, directory)
    message = str(e.value)
    for name in HEAD_NAMES:
        assert name in message
    assert "strict=False" in message
    assert sorted(e.value.report.missing) == HEAD_NAMES
    assert e.value.report.unexpected == [] and e.value.report.mismatched == []

    model = BertPretrainer(_config())
    head_before = model.masked_lm._bias.numpy().copy()
    report = load_google_checkpoint(model, prefix, strict=False)
    assert sorted(report.missing) == HEAD_NAMES
    assert sorted(report.loaded) == sorted(arrays)
    np.testing.assert_array_equal(model.encoder.pooler.kernel.numpy(),
                                  arrays["bert/pooler/dense/kernel"])
    np.testing.assert_array_equal(model.masked_lm._bias.numpy(), head_before)
    # build_from_google_checkpoint(strict=False) gives a usable model.
    model = build_from_google_checkpoint(BertPretrainer, directory, strict=False)
    np.testing.assert_array_equal(model.encoder.embeddings.layer_norm.gamma.numpy(),
                                  arrays["bert/embeddings/LayerNorm/gamma"])


def test_pretraining_checkpoint_into_encoder_reports_unused_heads(pretraining_ckpt):
    _, prefix, arrays = pretraining_ckpt
    encoder = BertEncoder(_config())
    report = load_google_checkpoint(encoder, prefix)
    assert report.ok
    assert sorted(report.unused) == HEAD_NAMES
    assert sorted(report.loaded) == sorted(n for n in arrays if n.startswith("bert/"))


# --------------------------------------------------------------------------- mismatches


def test_strict_error_lists_every_problem(pretraining_ckpt, tmp_path):
    _, _, arrays = pretraining_ckpt
    arrays = dict(arrays)
    renamed_from = "bert/encoder/layer_1/attention/self/query/kernel"
    renamed_to = "bert/encoder/layer_1/attention/self/qry/kernel"
    arrays[renamed_to] = arrays.pop(renamed_from)
    extra = "bert/encoder/layer_0/attention/self/foo"
    arrays[extra] = np.ones((3,), np.float32)
    wrong = "bert/encoder/layer_0/intermediate/dense/bias"
    arrays[wrong] = np.ones((36,), np.float32)  # model has 37
    prefix = google_ckpt.write_arrays_as_google_checkpoint(str(tmp_path / "bert_model.ckpt"), arrays)

    with pytest.raises(CheckpointMismatchError) as e:
        load_google_checkpoint(BertPretrainer(_config()), prefix)
    message = str(e.value)
    for name in (renamed_from, renamed_to, extra, wrong):
        assert name in message
    assert "[36]" in message and "[37]" in message
    report = e.value.report
    assert report.missing == [renamed_from]
    assert sorted(report.unexpected) == sorted([renamed_to, extra])
    assert report.mismatched == [(wrong, (36,), (37,))]
    assert isinstance(e.value, CheckpointError)

    model = BertPretrainer(_config())
    before = model.encoder.transformer_blocks[0]._feedforward_intermediate_dense.bias.numpy().copy()
    report = load_google_checkpoint(model, prefix, strict=False)
    assert len(report.loaded) == len(google_ckpt.expected_variable_shapes(google_ckpt.tiny_config())) - 2
    np.testing.assert_array_equal(
        model.encoder.transformer_blocks[1]._self_attention_layer._key_dense.kernel.numpy().reshape(32, 32),
        arrays["bert/encoder/layer_1/attention/self/key/kernel"])
    np.testing.assert_array_equal(model.masked_lm._bias.numpy(), arrays["cls/predictions/output_bias"])
    # The mismatched variable keeps its initial value.
    np.testing.assert_array_equal(
        model.encoder.transformer_blocks[0]._feedforward_intermediate_dense.bias.numpy(), before)


def test_vocab_size_disagreement_hint(pretraining_ckpt):
    directory, _, _ = pretraining_ckpt
    with pytest.raises(CheckpointMismatchError) as e:
        build_from_google_checkpoint(BertEncoder, directory, config=_config(vocab_size=120))
    message = str(e.value)
    assert "hint: vocab_size" in message
    assert "99" in message and "120" in message
    assert "bert/embeddings/word_embeddings" in message


def test_num_hidden_layers_disagreement_hint(pretraining_ckpt):
    directory, _, _ = pretraining_ckpt
    with pytest.raises(CheckpointMismatchError) as e:
        build_from_google_checkpoint(BertPretrainer, directory, config=_config(num_hidden_layers=3))
    message = str(e.value)
    assert "hint: num_hidden_layers: checkpoint has 2, the config says 3" in message
    assert "bert/encoder/layer_2/attention/self/query/kernel" in message
    with pytest.raises(CheckpointMismatchError, match="num_hidden_layers: checkpoint has 2, the "
                                                      "config says 1"):
        build_from_google_checkpoint(BertEncoder, directory, config=_config(num_hidden_layers=1))


def test_object_based_tf2_checkpoint_is_recognised(tmp_path):
    encoder = BertEncoder(_config())
    prefix = tf.train.Checkpoint(model=encoder).write(str(tmp_path / "ckpt"))
    with pytest.raises(CheckpointMismatchError) as e:
        load_google_checkpoint(BertEncoder(_config()), prefix)
    assert "TF2 object-based checkpoint" in str(e.value)


# --------------------------------------------------------------------------- paths


def test_path_forms_resolve(pretraining_ckpt):
    directory, prefix, arrays = pretraining_ckpt
    assert resolve_checkpoint(directory) == prefix
    assert resolve_checkpoint(prefix) == prefix
    assert resolve_checkpoint(prefix + ".index") == prefix
    assert resolve_checkpoint(prefix + DATA) == prefix
    for path in (prefix + ".index", prefix + DATA):
        encoder = build_from_google_checkpoint(BertEncoder, path)
        np.testing.assert_array_equal(encoder.pooler.bias.numpy(), arrays["bert/pooler/dense/bias"])


def test_nonexistent_path(tmp_path):
    path = str(tmp_path / "nowhere" / "bert_model.ckpt")
    with pytest.raises(CheckpointError) as e:
        build_from_google_checkpoint(BertEncoder, path)
    assert path in str(e.value)
    assert not isinstance(e.value, CheckpointMismatchError)


def test_directory_without_checkpoint(tmp_path):
    (tmp_path / "bert_config.json").write_text(json.dumps(google_ckpt.tiny_config()))
    with pytest.raises(CheckpointError) as e:
        build_from_google_checkpoint(BertEncoder, str(tmp_path))
    assert str(tmp_path) in str(e.value)
    assert "bert_model.ckpt.index" in str(e.value)


def test_directory_with_other_checkpoint_names(pretraining_ckpt, tmp_path):
    _, prefix, _ = pretraining_ckpt
    for suffix in (".index", DATA):
        shutil.copy(prefix + suffix, str(tmp_path / ("model.ckpt-5" + suffix)))
    assert resolve_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-5")
    for suffix in (".index", DATA):
        shutil.copy(prefix + suffix, str(tmp_path / ("model.ckpt-9" + suffix)))
    with pytest.raises(CheckpointError, match="model.ckpt-5.index"):
        resolve_checkpoint(str(tmp_path))


def test_directory_without_config(pretraining_ckpt, tmp_path):
    _, prefix, _ = pretraining_ckpt
    for suffix in (".index", DATA):
        shutil.copy(prefix + suffix, str(tmp_path / ("bert_model.ckpt" + suffix)))
    with pytest.raises(CheckpointError) as e:
        build_from_google_checkpoint(BertPretrainer, str(tmp_path))
    assert "bert_config.json" in str(e.value)
    assert str(tmp_path) in str(e.value)
    # An explicit config makes it loadable.
    build_from_google_checkpoint(BertPretrainer, str(tmp_path), config=_config())


def test_missing_weights_file_after_mapping(pretraining_ckpt, tmp_path):
    directory, prefix, _ = pretraining_ckpt
    shutil.copy(prefix + ".index", str(tmp_path / "bert_model.ckpt.index"))
    shutil.copy(os.path.join(directory, "bert_config.json"), str(tmp_path / "bert_config.json"))
    with pytest.raises(CheckpointError) as e:
        build_from_google_checkpoint(BertPretrainer, str(tmp_path))
    assert not isinstance(e.value, CheckpointMismatchError)
    assert "bert_model.ckpt" + DATA in str(e.value) and "missing" in str(e.value)


def test_corrupt_index(tmp_path):
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"this is not a checkpoint index" * 10)
    with pytest.raises(CheckpointError) as e:
        load_google_checkpoint(BertEncoder(_config()), str(tmp_path))
    assert "bert_model.ckpt" in str(e.value)


@pytest.mark.parametrize("name", GENUINE)
def test_genuine_index_without_weights(name):
    directory = os.path.join(GOOGLE_INDEX_DIR, name)
    if not os.path.exists(os.path.join(directory, "bert_model.ckpt.index")):
        pytest.skip("shared Google index data absent")
    shapes = _list(os.path.join(directory, "bert_model.ckpt"))
    num_trainable = sum(1 for n in shapes if n != "global_step")
    with pytest.raises(CheckpointError) as e:
        build_from_google_checkpoint(BertPretrainer, directory)
    assert not isinstance(e.value, CheckpointMismatchError)  # every variable mapped
    message = str(e.value)
    assert "bert_model.ckpt" + DATA in message and "missing" in message
    assert f"lists {len(shapes)} variables" in message
    assert f"({num_trainable} map onto the model)" in message
    if name.endswith("_hfl"):
        assert "global_step" in shapes and len(shapes) == num_trainable + 1


# --------------------------------------------------------------------------- issue 12 / the one-call API


def test_hidden_size_disagreement_blames_hidden_size_not_vocab_size(pretraining_ckpt):
    directory, _, _ = pretraining_ckpt
    with pytest.raises(CheckpointMismatchError) as e:
        build_from_google_checkpoint(BertEncoder, directory,
                                     config=_config(hidden_size=48, num_attention_heads=4))
    message = str(e.value)
    assert "hint: hidden_size: checkpoint has 32, the config says 48" in message
    assert "hint: vocab_size" not in message and "hint: max_position" not in message


@pytest.mark.parametrize("keep", [100, 0])
def test_truncated_data_file_is_a_clear_error_naming_it(pretraining_ckpt, tmp_path, keep):
    directory, _, _ = pretraining_ckpt
    copy = str(tmp_path / "copy")
    shutil.copytree(directory, copy)
    data = os.path.join(copy, "bert_model.ckpt" + DATA)
    with open(data, "rb") as f:
        head = f.read(keep)
    with open(data, "wb") as f:
        f.write(head)
    with pytest.raises(CheckpointError, match=rf"the weights file {data} is truncated or "
                                              rf"corrupted \(reading bert/"):
        build_from_google_checkpoint(BertPretrainer, copy)


def test_classifier_num_classes_from_the_head_or_labels_txt(pretraining_ckpt, tmp_path):
    tuned = google_ckpt.write_google_checkpoint(
        str(tmp_path / "tuned"), google_ckpt.tiny_config(), with_pretraining_heads=False,
        num_classifier_labels=5, seed=2)
    model = build_from_google_checkpoint(BertClassifier, tuned)
    assert model.num_classes == 5
    np.testing.assert_array_equal(model.classifier.output_weights.numpy(),
                                  google_ckpt.read_checkpoint_arrays(tuned)["output_weights"])
    directory, _, _ = pretraining_ckpt
    with pytest.raises(CheckpointError, match="no classifier head .* and no labels.txt"):
        build_from_google_checkpoint(BertClassifier, directory)
    copy = str(tmp_path / "pretrained")
    shutil.copytree(directory, copy)
    with open(os.path.join(copy, "labels.txt"), "w") as f:
        f.write("neg\npos\nneutral\n")
    assert build_from_google_checkpoint(BertClassifier, copy).num_classes == 3


def test_task_models_build_on_a_given_encoder():
    encoder = BertEncoder(_config())
    classifier = BertClassifier(encoder, num_classes=3)
    pretrainer = BertPretrainer(encoder)
    assert classifier.encoder is encoder and pretrainer.encoder is encoder
    assert classifier.config == encoder.config
    again = BertClassifier.from_config(classifier.get_config())
    assert again.num_classes == 3 and again.config == encoder.config
