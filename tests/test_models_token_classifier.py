"""BertTokenClassifier: numeric parity with Google's BERT (NumPy reference) from a Google-layout
checkpoint, head naming in Google checkpoints both ways, `.keras` round trip, dropout."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import numpy_bert
from bert_tf import BertConfig, BertEncoder
from bert_tf.checkpoints import (CheckpointMismatchError, google_name_table,
                                 load_google_checkpoint, save_google_checkpoint)
from bert_tf.models import BertTokenClassifier

ATOL = 1e-5
NUM_LABELS = 5


def _batch(config: dict, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    lengths, S = [9, 4, 1], 9
    ids = np.zeros((3, S), np.int32)
    mask = np.zeros((3, S), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.randint(1, config["vocab_size"], size=n)
        mask[row, :n] = 1
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}


def _reference_logits(arrays, config, features):
    ref = numpy_bert.bert_forward(arrays, config, features["input_word_ids"],
                                  features["input_mask"], features["input_type_ids"])
    return ref["sequence_output"] @ arrays["output_weights"].T.astype(np.float64) + arrays[
        "output_bias"]


@pytest.fixture(scope="module")
def ner_ckpt(tmp_path_factory):
    """A fine-tuned Google-layout checkpoint: bert/* + top-level output_weights [5, H]."""
    directory = str(tmp_path_factory.mktemp("google_ner"))
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(
        directory, config, with_pretraining_heads=False, num_classifier_labels=NUM_LABELS,
        with_optimizer_slots=True, with_global_step=True, seed=5)
    return prefix, google_ckpt.read_checkpoint_arrays(prefix), config


def _load(prefix, config, **kwargs):
    model = BertTokenClassifier(BertEncoder(BertConfig.from_dict(config)), NUM_LABELS)
    report = load_google_checkpoint(model, prefix, optional_groups=("classifier",), **kwargs)
    return model, report


def test_matches_google_reference(ner_ckpt):
    prefix, arrays, config = ner_ckpt
    model, report = _load(prefix, config)
    assert report.ok and report.newly_initialized == [] and report.unused == []
    features = _batch(config)
    logits = model(features, training=False)
    assert logits.dtype == tf.float32
    assert tuple(logits.shape) == (3, 9, NUM_LABELS)
    expected = _reference_logits(arrays, config, features)
    valid = features["input_mask"].astype(bool)  # padded positions differ by design
    assert np.abs(logits.numpy()[valid] - expected[valid]).max() <= ATOL
    # Google's feature names work too; dropout is active only in training.
    google = {"input_ids": features["input_word_ids"], "input_mask": features["input_mask"],
              "segment_ids": features["input_type_ids"]}
    np.testing.assert_allclose(model(google, training=False), logits, atol=1e-6)
    t1, t2 = model(features, training=True), model(features, training=True)
    assert np.abs(t1.numpy() - t2.numpy()).max() > 1e-4


def test_head_is_saved_in_googles_naming(ner_ckpt, tmp_path):
    prefix, arrays, config = ner_ckpt
    model, _ = _load(prefix, config)
    names = {e.name: e.google_shape for e in google_name_table(model)}
    assert names["output_weights"] == (NUM_LABELS, config["hidden_size"])
    assert names["output_bias"] == (NUM_LABELS,)
    saved = save_google_checkpoint(model, tmp_path / "out" / "bert_model.ckpt")
    written = google_ckpt.read_checkpoint_arrays(saved)
    assert set(written) == set(names)
    for name in names:
        np.testing.assert_array_equal(written[name], arrays[name])
    assert BertConfig.from_json_file(tmp_path / "out" / "bert_config.json") == model.config
    again, report = _load(saved, config)
    assert report.ok and report.newly_initialized == []
    features = _batch(config, seed=2)
    np.testing.assert_array_equal(again(features, training=False), model(features, training=False))


def test_pretrained_checkpoint_leaves_the_head_new_and_label_count_mismatch_is_reported(
        ner_ckpt, tmp_path):
    _, _, config = ner_ckpt
    pre = google_ckpt.write_google_checkpoint(str(tmp_path / "pre"), config, seed=6)
    model, report = _load(pre, config)
    assert report.newly_initialized == ["output_weights", "output_bias"]
    assert any(n.startswith("cls/") for n in report.unused)
    wrong = BertTokenClassifier(BertEncoder(BertConfig.from_dict(config)), NUM_LABELS + 1)
    with pytest.raises(CheckpointMismatchError, match=r"output_weights: checkpoint \[5, 32\] "
                                                      r"vs model \[6, 32\]"):
        load_google_checkpoint(wrong, ner_ckpt[0], optional_groups=("classifier",))


def test_keras_round_trip(ner_ckpt, tmp_path):
    prefix, _, config = ner_ckpt
    model, _ = _load(prefix, config)
    model.encoder.trainable = False
    path = str(tmp_path / "ner.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, BertTokenClassifier)
    assert loaded.get_config() == model.get_config()
    assert loaded.encoder.trainable is False and loaded.num_labels == NUM_LABELS
    features = _batch(config)
    np.testing.assert_array_equal(loaded(features, training=False), model(features, training=False))


def test_mixed_precision_outputs_float32(ner_ckpt):
    _, _, config = ner_ckpt
    encoder = BertEncoder(BertConfig.from_dict(config), dtype=keras.DTypePolicy("mixed_bfloat16"))
    model = BertTokenClassifier(encoder, 3, dropout=0.0)
    assert model.classifier.compute_dtype == "bfloat16"
    assert model.get_config()["dropout"] == 0.0
    assert model(_batch(config), training=False).dtype == tf.float32
    # A config builds a new float32 encoder (as BertClassifier does).
    fresh = BertTokenClassifier(BertConfig.from_dict(config), 3)
    assert fresh.classifier.compute_dtype == "float32"
    assert fresh(_batch(config), training=False).shape == (3, 9, 3)


# --------------------------------------------------------------------------- learning end to end

WORDS = {"O": ["the", "cat", "sat", "on", "mat", "went", "to", ","],
         "PER": ["alice", "bob", "unaffable"], "LOC": ["paris", "rome"]}
LEARN_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "new",
               "york"] + [w for ws in WORDS.values() for w in ws if w != "unaffable"]


def _generated_sentences(rng, count):
    """Random sentences; PER = a name, LOC = a city or "New York" (B-LOC I-LOC)."""
    sentences = []
    for _ in range(count):
        words, tags = [], []
        for _ in range(rng.randint(2, 25)):
            kind = rng.choice(["O", "O", "O", "PER", "LOC", "NY"])
            if kind == "NY":
                words += ["New", "York"]
                tags += ["B-LOC", "I-LOC"]
            else:
                words.append(str(rng.choice(WORDS[kind])).capitalize())
                tags.append("O" if kind == "O" else f"B-{kind}")
        sentences.append((words, tags))
    return sentences


def test_tiny_model_learns_a_generated_entity_task():
    from bert_tf import BertTokenizer
    from bert_tf.data.ner_metrics import ner_metrics
    from bert_tf.data.token_alignment import create_features
    from bert_tf.models import token_classification_loss

    keras.utils.set_random_seed(0)
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    ids = {label: i for i, label in enumerate(labels)}
    tokenizer = BertTokenizer(LEARN_VOCAB, do_lower_case=True)
    rng = np.random.RandomState(0)
    train, test = _generated_sentences(rng, 256), _generated_sentences(rng, 64)

    def features(data):
        return create_features(tokenizer, [w for w, _ in data],
                               [[ids[t] for t in tags] for _, tags in data],
                               max_seq_length=16, doc_stride=5)

    train_features, test_features = features(train), features(test)
    assert len(test_features) > len(test)  # long sentences span several windows
    config = BertConfig(vocab_size=len(LEARN_VOCAB), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=16)
    model = BertTokenClassifier(BertEncoder(config), len(labels))
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = token_classification_loss(batch, model(batch, training=True))["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))
        return loss

    dataset = train_features.dataset().shuffle(1024, seed=0).repeat().batch(32)
    for batch in dataset.take(200):
        step(batch)
    logits = model(dict(test_features.arrays), training=False)
    metrics = token_classification_loss(test_features.arrays, logits)
    predicted = test_features.merge(np.argmax(logits.numpy(), axis=-1))
    result = ner_metrics([tags for _, tags in test], [[labels[i] for i in p] for p in predicted])
    assert result.overall.gold > 200
    assert result.overall.f1 > 0.95, result.as_dict()
    assert float(metrics["accuracy"]) == pytest.approx(result.accuracy, abs=1e-6)
