"""Keras integration: `.keras` files, layer configs, dropout wiring, mixed precision, fit(),
keras-hub interop, and use inside a user's functional model."""

from __future__ import annotations

import contextlib

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
from bert_tf import BertClassifier, BertConfig, BertEncoder, BertPretrainer
from bert_tf.checkpoints.keras_hub_interop import from_keras_hub_backbone, to_keras_hub_backbone
from bert_tf.layers import BertEmbeddings, ClassificationHead, TransformerBlock

B, S = 3, 8


def _config(**overrides) -> BertConfig:
    return BertConfig.from_dict(google_ckpt.tiny_config(**overrides))


def _features(config: BertConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, config.vocab_size, size=(B, S)).astype(np.int32)
    mask = np.ones((B, S), np.int32)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    ids = ids * mask
    segments = np.zeros((B, S), np.int32)
    segments[0, 4:] = 1
    segments[1, 3:5] = 1
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": segments,
        "masked_lm_positions": np.array([[1, 2, 5], [1, 3, 0], [1, 0, 0]], np.int32),
        "masked_lm_ids": rng.randint(0, config.vocab_size, size=(B, 3)).astype(np.int32),
        "masked_lm_weights": np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32),
        "next_sentence_labels": np.array([[0], [1], [0]], np.int32),
    }


def _hub(features: dict) -> dict:
    return {"input_word_ids": features["input_ids"], "input_mask": features["input_mask"],
            "input_type_ids": features["segment_ids"]}


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@contextlib.contextmanager
def _policy(name: str):
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


# --------------------------------------------------------------------------- .keras files


def test_encoder_keras_file_round_trip(tmp_path):
    config = _config(hidden_act="relu", attention_probs_dropout_prob=0.05)
    encoder = BertEncoder(config)
    x = _hub(_features(config))
    expected = encoder(x, training=False)
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, BertEncoder)
    assert loaded.config == config
    got = loaded(x, training=False)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy())
    assert len(got["encoder_outputs"]) == config.num_hidden_layers
    for a, b in zip(got["encoder_outputs"], expected["encoder_outputs"]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(loaded.weights) == len(encoder.weights)


def test_pretrainer_keras_file_round_trip_keeps_tied_embeddings(tmp_path):
    config = _config()
    model = BertPretrainer(config)
    features = _features(config)
    expected = model(features, training=False)
    path = str(tmp_path / "pretrainer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, BertPretrainer)
    assert loaded.config == config
    got = loaded(features, training=False)
    for key in ("sequence_output", "pooled_output", "masked_lm_logits", "next_sentence_logits"):
        np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy())
    assert len(loaded.weights) == len(model.weights)
    # Tied: the MLM head projects with the encoder's word-embedding table, one variable.
    assert loaded.masked_lm.token_embedding is loaded.encoder.embeddings.word_embeddings
    table = loaded.encoder.embeddings.word_embeddings.embeddings
    table.assign(table * 2.0)
    doubled = loaded(features, training=False)
    assert _max_diff(doubled["masked_lm_logits"], got["masked_lm_logits"]) > 1e-3
    assert len({id(v) for v in loaded.trainable_variables}) == len(loaded.trainable_variables)


def test_classifier_keras_file_round_trip(tmp_path):
    config = _config()
    model = BertClassifier(config, num_classes=4, dropout=0.2)
    features = _features(config)
    expected = model(features, training=False)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, BertClassifier)
    assert loaded.num_classes == 4 and loaded.dropout == 0.2
    assert loaded.classifier.dropout_layer.rate == 0.2
    got = loaded(features, training=False)
    assert tuple(got.shape) == (B, 4)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("cls, kwargs", [(BertClassifier, {"num_classes": 2}),
                                         (BertPretrainer, {})])
def test_models_keep_trainable_and_dtype_in_config(cls, kwargs):
    model = cls(_config(), dtype="mixed_bfloat16", trainable=False, **kwargs)
    assert model.trainable_weights == []
    again = cls.from_config(model.get_config())
    assert not again.trainable and again.trainable_weights == []
    assert again.encoder.embeddings.dtype_policy.name == "mixed_bfloat16"


# --------------------------------------------------------------------------- layer configs


def test_embeddings_config_round_trip():
    layer = BertEmbeddings(vocab_size=50, hidden_size=16, max_position_embeddings=20,
                           type_vocab_size=3, dropout=0.15, initializer_range=0.05,
                           name="emb")
    ids = np.array([[1, 2, 3, 4], [5, 6, 0, 0]], np.int32)
    types = np.array([[0, 1, 2, 2], [0, 0, 0, 0]], np.int32)
    out = layer(ids, types)
    config = layer.get_config()
    assert config["vocab_size"] == 50 and config["hidden_size"] == 16
    assert config["max_position_embeddings"] == 20 and config["type_vocab_size"] == 3
    assert config["dropout"] == 0.15 and config["initializer_range"] == 0.05
    assert config["layer_norm_epsilon"] == 1e-12
    clone = BertEmbeddings.from_config(config)
    assert clone.get_config() == config
    assert clone.dropout_layer.rate == 0.15
    clone(ids, types)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(ids, types).numpy(), out.numpy())
    # Serialised through keras' registry as well.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, BertEmbeddings) and revived.get_config() == config


def test_transformer_block_config_round_trip():
    block = TransformerBlock(intermediate_dim=24, num_heads=2, dropout=0.1,
                             attention_dropout=0.3, layer_norm_epsilon=1e-12, name="blk")
    x = np.random.RandomState(0).standard_normal((2, 5, 8)).astype(np.float32)
    out = block(x)
    config = block.get_config()
    assert config["attention_dropout"] == 0.3
    assert config["dropout"] == 0.1
    clone = TransformerBlock.from_config(config)
    assert clone.attention_dropout == 0.3 and clone.dropout == 0.1
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(block.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), out.numpy(), atol=1e-6)
    assert clone._self_attention_layer._dropout == 0.3
    assert clone._self_attention_dropout.rate == 0.1
    assert clone._feedforward_dropout.rate == 0.1
    # attention_dropout defaults to dropout.
    default = TransformerBlock(intermediate_dim=24, num_heads=2, dropout=0.2)
    assert default.get_config()["attention_dropout"] == 0.2


def test_classification_head_config_round_trip():
    head = ClassificationHead(num_classes=3, dropout=0.25, initializer_range=0.1, name="head")
    pooled = np.random.RandomState(0).standard_normal((4, 8)).astype(np.float32)
    out = head(pooled)
    assert tuple(head.output_weights.shape) == (3, 8)
    np.testing.assert_allclose(out.numpy(), pooled @ head.output_weights.numpy().T, atol=1e-6)
    config = head.get_config()
    assert (config["num_classes"], config["dropout"], config["initializer_range"]) == (3, 0.25, 0.1)
    clone = ClassificationHead.from_config(config)
    assert clone.get_config() == config
    clone(pooled)
    clone.set_weights(head.get_weights())
    np.testing.assert_array_equal(clone(pooled).numpy(), out.numpy())
    with pytest.raises(ValueError, match="num_classes"):
        ClassificationHead(num_classes=0)


# --------------------------------------------------------------------------- dropout wiring


@pytest.mark.parametrize("activation", ["gelu", "gelu_exact", "relu"])
def test_transformer_block_fused_call_equals_keras_hub_call(activation):
    """Our 2-D MatMul/BiasAdd call computes keras-hub's TransformerEncoder.call on the same
    variables (keras-hub's path is what return_attention_scores=True takes)."""
    from bert_tf.layers.activations import get_activation

    block = TransformerBlock(intermediate_dim=24, num_heads=2, dropout=0.1,
                             activation=get_activation(activation), layer_norm_epsilon=1e-12)
    x = np.random.RandomState(0).normal(size=(3, 7, 8)).astype("float32")
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6], "int32")
    ours = block(x, padding_mask=mask, training=False)
    keras_hub_path, _ = block(x, padding_mask=mask, training=False, return_attention_scores=True)
    np.testing.assert_allclose(ours.numpy(), keras_hub_path.numpy(), atol=1e-5)


def test_transformer_block_training_projection_equals_inference_projection():
    """Training projects query, key and value with one [H, 3H] matmul, inference with three;
    without dropout both compute keras-hub's call."""
    block = TransformerBlock(intermediate_dim=24, num_heads=2, dropout=0.0,
                             layer_norm_epsilon=1e-12)
    x = np.random.RandomState(1).normal(size=(2, 5, 8)).astype("float32")
    mask = np.array([[1] * 5, [1] * 3 + [0] * 2], "int32")
    keras_hub_path, _ = block(x, padding_mask=mask, training=False, return_attention_scores=True)
    for training in (True, False):
        np.testing.assert_allclose(block(x, padding_mask=mask, training=training).numpy(),
                                   keras_hub_path.numpy(), atol=1e-5)


def test_attention_and_hidden_dropout_rates_land_where_they_should():
    config = _config(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.05)
    encoder = BertEncoder(config)
    assert encoder.embeddings.dropout_layer.rate == 0.2
    for block in encoder.transformer_blocks:
        assert block._self_attention_layer._dropout == 0.05
        assert block._self_attention_dropout.rate == 0.2
        assert block._feedforward_dropout.rate == 0.2
        assert block.attention_dropout == 0.05 and block.dropout == 0.2
    # Attention dropout alone (hidden dropout 0) still makes training calls random...
    encoder = BertEncoder(_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.3))
    x = _hub(_features(encoder.config))
    a = encoder(x, training=True)["sequence_output"].numpy()
    b = encoder(x, training=True)["sequence_output"].numpy()
    assert np.abs(a - b).max() > 1e-4
    # ...and with both rates 0 training equals inference.
    encoder = BertEncoder(_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    np.testing.assert_allclose(encoder(x, training=True)["sequence_output"].numpy(),
                               encoder(x, training=False)["sequence_output"].numpy(), atol=1e-5)


# --------------------------------------------------------------------------- mixed precision


def _assert_mixed_encoder(encoder: BertEncoder) -> None:
    assert {v.dtype for v in encoder.weights} == {"float32"}
    for block in encoder.transformer_blocks:
        assert block._self_attention_layer._softmax.compute_dtype == "float32"
        assert block._self_attention_layer_norm.gamma.dtype == "float32"
        assert block._feedforward_layer_norm.beta.dtype == "float32"
        assert block.compute_dtype == "bfloat16"
    assert encoder.embeddings.layer_norm.gamma.dtype == "float32"


def test_mixed_bfloat16_encoder_and_classifier():
    config = _config()
    features = _features(config)
    reference = BertClassifier(config, num_classes=3)
    ref_logits = reference(features, training=False)
    ref_pooled = reference.encoder(_hub(features), training=False)["pooled_output"]
    with _policy("mixed_bfloat16"):
        model = BertClassifier(config, num_classes=3)
        model.set_weights(reference.get_weights())
        _assert_mixed_encoder(model.encoder)
        assert {v.dtype for v in model.weights} == {"float32"}
        out = model.encoder(_hub(features), training=False)
        assert out["sequence_output"].dtype == tf.bfloat16
        assert _max_diff(out["pooled_output"], ref_pooled) < 0.1
        logits = model(features, training=False)
        assert logits.dtype == tf.float32
        assert _max_diff(logits, ref_logits) < 0.1
        train_out = model.encoder(_hub(features), training=True)  # explicit-softmax path
        assert train_out["sequence_output"].dtype == tf.bfloat16
        assert np.all(np.isfinite(tf.cast(train_out["sequence_output"], tf.float32).numpy()))
        labels = np.array([0, 2, 1])
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(
                labels, model(features, training=True), from_logits=True)
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        assert len(grads) == len(model.trainable_variables) > 0
        for variable, grad in zip(model.trainable_variables, grads):
            assert grad is not None, variable.path
            assert grad.dtype == tf.float32
            assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())), variable.path


def test_mixed_bfloat16_pretrainer():
    config = _config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    features = _features(config)
    reference = BertPretrainer(config)
    ref = reference(features, training=False)
    with _policy("mixed_bfloat16"):
        model = BertPretrainer(config)
        model.set_weights(reference.get_weights())
        _assert_mixed_encoder(model.encoder)
        assert {v.dtype for v in model.weights} == {"float32"}
        for training in (False, True):
            out = model(features, training=training)
            assert out["sequence_output"].dtype == tf.bfloat16
            assert out["masked_lm_logits"].dtype == tf.float32
            assert out["next_sentence_logits"].dtype == tf.float32
            losses = model.compute_pretraining_losses(features, out)
            assert all(v.dtype == tf.float32 for v in losses.values())
            assert np.isfinite(float(losses["loss"]))
        out = model(features, training=False)
        assert _max_diff(out["pooled_output"], ref["pooled_output"]) < 0.1
        assert _max_diff(out["next_sentence_logits"], ref["next_sentence_logits"]) < 0.1
        # bfloat16 logits over V classes: compare log-probs loosely.
        ref_lp = tf.nn.log_softmax(ref["masked_lm_logits"]).numpy()
        lp = tf.nn.log_softmax(out["masked_lm_logits"]).numpy()
        assert _max_diff(lp, ref_lp) < 0.15
        with tf.GradientTape() as tape:
            loss = model.compute_pretraining_losses(features, model(features, training=True))["loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads):
            assert grad is not None, variable.path
            assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())), variable.path


# --------------------------------------------------------------------------- fit()


def test_pretrainer_fit_memorises_a_tiny_batch():
    keras.utils.set_random_seed(0)
    config = _config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    features = _features(config)
    model = BertPretrainer(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = tf.data.Dataset.from_tensors(features).repeat(40)
    history = model.fit(dataset, epochs=1, verbose=0)
    first = model.compute_pretraining_losses(features, model(features))
    history = model.fit(dataset, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    final = model.compute_pretraining_losses(features, model(features))
    assert float(final["loss"]) < 0.5 * float(first["loss"])
    assert float(final["masked_lm_accuracy"]) == 1.0
    assert float(final["next_sentence_accuracy"]) == 1.0
    assert set(history.history) >= {"loss", "masked_lm_loss", "next_sentence_accuracy"}


# --------------------------------------------------------------------------- keras-hub


def test_keras_hub_backbone_round_trip():
    config = _config()
    features = _features(config)
    encoder = BertEncoder(config)
    ours = encoder(_hub(features), training=False)
    backbone = to_keras_hub_backbone(encoder)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    theirs = backbone({"token_ids": features["input_ids"], "segment_ids": features["segment_ids"],
                       "padding_mask": features["input_mask"]}, training=False)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(theirs[key].numpy(), ours[key].numpy(), atol=1e-5)
    back = from_keras_hub_backbone(backbone)
    again = back(_hub(features), training=False)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(again[key].numpy(), ours[key].numpy())
    assert back.config.num_hidden_layers == config.num_hidden_layers
    assert back.config.max_position_embeddings == config.max_position_embeddings


def test_keras_hub_backbone_rejects_non_gelu():
    with pytest.raises(ValueError, match="tanh-GELU.*relu"):
        to_keras_hub_backbone(BertEncoder(_config(hidden_act="relu")))


# --------------------------------------------------------------------------- user models


def test_encoder_inside_a_functional_model():
    config = _config()
    features = _features(config)
    encoder = BertEncoder(config)
    inputs = {name: keras.Input(shape=(S,), dtype="int32", name=name)
              for name in ("input_word_ids", "input_mask", "input_type_ids")}
    dense = keras.layers.Dense(5, name="task")
    model = keras.Model(inputs, dense(encoder(inputs)["pooled_output"]))
    features = _hub(features)
    out = model(features, training=False)
    assert tuple(out.shape) == (B, 5)
    expected = dense(encoder(features, training=False)["pooled_output"])
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)
    predicted = model.predict(features, verbose=0)
    np.testing.assert_allclose(predicted, out.numpy(), atol=1e-5)
    # The encoder's variables are the model's (fine-tuning trains them).
    encoder_ids = {id(v) for v in encoder.trainable_variables}
    assert encoder_ids <= {id(v) for v in model.trainable_variables}
