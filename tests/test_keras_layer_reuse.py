"""BertPreprocessor + BertEncoder as layers of a user's own Keras model: functional and subclassed
models trained with fit(), `.keras` round trips, and a frozen vs trainable encoder."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertEncoder
from bert_tf.text import BertPreprocessor

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!", "the", "cat",
         "sat", "un", "##aff", "##able", ",", "."]
CONFIG = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
SEQ_LENGTH = 8
TEXTS = tf.constant(["Hello, world!", "the cat sat", "unaffable.", "hello cat", ""])
LABELS = np.array([0, 1, 1, 0, 1])
# Warnings Keras gives when a `.keras` file's variables are only partly restored.
PARTIAL_LOAD = ("cannot be built", "Skipping variable loading")


def _values(variables) -> list[np.ndarray]:
    return [v.numpy().copy() for v in variables]


def _all_changed(before, after) -> bool:
    return all(not np.array_equal(a, b) for a, b in zip(before, after))


def _compile(model: keras.Model) -> None:
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def _train_two_steps(model: keras.Model) -> None:
    before = _values(model.trainable_weights)
    history = model.fit(TEXTS, LABELS, batch_size=len(LABELS), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    assert _all_changed(before, _values(model.trainable_weights))


def _save_and_reload(model: keras.Model, path) -> keras.Model:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(path)
        loaded = keras.saving.load_model(path)  # no custom_objects: the classes are registered
    partial = [str(w.message) for w in caught if any(p in str(w.message) for p in PARTIAL_LOAD)]
    assert not partial, partial
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded(TEXTS).numpy(), model(TEXTS).numpy(), rtol=0, atol=1e-6)
    # The optimizer state comes back too, so training can resume.
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    return loaded


def _functional_model() -> tuple[keras.Model, BertPreprocessor, BertEncoder, keras.layers.Dense]:
    preprocessor = BertPreprocessor(VOCAB, seq_length=SEQ_LENGTH)
    encoder = BertEncoder(CONFIG)
    head = keras.layers.Dense(2, name="head")
    text = keras.Input(shape=(), dtype="string", name="text")
    logits = head(encoder(preprocessor(text))["pooled_output"])
    return keras.Model(text, logits), preprocessor, encoder, head


@keras.saving.register_keras_serializable(package="user")
class TextClassifier(keras.Model):
    """A user's subclassed model holding the preprocessor and the encoder as attributes."""

    def __init__(self, preprocessor, encoder, num_classes=2, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.num_classes = num_classes
        self.head = keras.layers.Dense(num_classes, name="head")

    def build(self, input_shape):
        # Needed for loading: without a `build`, Keras builds a subclassed model by calling it on
        # float placeholders, which a string layer rejects, and the head would stay unbuilt.
        self.head.build((None, self.encoder.config.hidden_size))

    def call(self, texts, training=False):
        inputs = self.preprocessor(texts)
        return self.head(self.encoder(inputs, training=training)["pooled_output"])

    def get_config(self):
        config = super().get_config()
        config.update(preprocessor=keras.saving.serialize_keras_object(self.preprocessor),
                      encoder=keras.saving.serialize_keras_object(self.encoder),
                      num_classes=self.num_classes)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("preprocessor", "encoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def test_functional_model_fit_and_keras_file(tmp_path):
    model, preprocessor, encoder, _ = _functional_model()
    assert model.output.shape == (None, 2)
    _compile(model)
    _train_two_steps(model)
    loaded = _save_and_reload(model, tmp_path / "functional.keras")
    pre, enc = loaded.layers[1], loaded.layers[2]
    assert isinstance(pre, BertPreprocessor) and isinstance(enc, BertEncoder)
    assert pre.vocab_tokens == VOCAB and pre.seq_length == SEQ_LENGTH
    assert enc.config == CONFIG


def test_subclassed_model_fit_and_keras_file(tmp_path):
    model = TextClassifier(BertPreprocessor(VOCAB, seq_length=SEQ_LENGTH), BertEncoder(CONFIG))
    _compile(model)
    _train_two_steps(model)
    assert len(model.trainable_weights) == len(model.encoder.trainable_weights) + 2
    loaded = _save_and_reload(model, tmp_path / "subclassed.keras")
    assert isinstance(loaded.preprocessor, BertPreprocessor)
    assert isinstance(loaded.encoder, BertEncoder) and loaded.encoder.config == CONFIG
    assert loaded.num_classes == 2


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "trainable"])
def test_frozen_and_trainable_encoder(frozen, tmp_path):
    model, preprocessor, encoder, head = _functional_model()
    encoder_weights = len(encoder.weights)
    assert encoder_weights == len(encoder.trainable_weights) > 0
    assert preprocessor.weights == [] and not preprocessor.trainable
    encoder.trainable = not frozen  # before compile(), which fixes what fit() trains
    _compile(model)
    if frozen:
        assert len(model.trainable_weights) == 2  # the head's kernel and bias
        assert len(model.non_trainable_weights) == encoder_weights
        assert encoder.trainable_weights == []
    else:
        assert len(model.trainable_weights) == encoder_weights + 2
        assert model.non_trainable_weights == []
    encoder_before, head_before = _values(encoder.weights), _values(head.weights)
    history = model.fit(TEXTS, LABELS, batch_size=len(LABELS), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert _all_changed(head_before, _values(head.weights))
    if frozen:
        for a, b in zip(encoder_before, _values(encoder.weights)):
            np.testing.assert_array_equal(a, b)
    else:
        assert _all_changed(encoder_before, _values(encoder.weights))
    # A `.keras` file keeps the encoder frozen (or not), with its optimizer state.
    loaded = _save_and_reload(model, tmp_path / "model.keras")
    assert loaded.layers[2].trainable is not frozen
    assert len(loaded.trainable_weights) == len(model.trainable_weights)


def test_encoder_keras_file_keeps_trainable_flag_and_dtype_policy(tmp_path):
    encoder = BertEncoder(CONFIG, dtype="mixed_bfloat16")  # the global policy stays float32
    encoder.trainable = False
    encoder.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras")
    assert not loaded.trainable and loaded.trainable_weights == []
    assert len(loaded.non_trainable_weights) == len(encoder.weights)
    for layer in (loaded.embeddings, *loaded.transformer_blocks, loaded.pooler):
        assert layer.dtype_policy.name == "mixed_bfloat16"
    ids = np.array([[2, 5, 6, 3, 0]], np.int32)
    inputs = {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
              "input_type_ids": np.zeros_like(ids)}
    np.testing.assert_array_equal(loaded(inputs)["sequence_output"].numpy(),
                                  encoder(inputs)["sequence_output"].numpy())
