"""bucket_by_length: the same examples with the same features, every batch one bucket shape, and
a model's outputs on a bucketed batch equal to its fixed-length outputs."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertClassifier, BertConfig
from bert_tf.data.bucketing import (bucket_by_length, bucketed_inference_batches,
                                    bucketed_training_batches, pad_to_seq_length,
                                    sequence_feature_names)
from google_ckpt import tiny_config

SEQ = 40
BUCKET = 8


def _examples(n=37, seed=0):
    """Packed examples of random lengths 2..SEQ (Google's feature names), with an id per example."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, SEQ + 1, size=n)
    lengths[:3] = [SEQ, 2, BUCKET]  # the cap, the shortest, a bucket boundary
    ids = np.zeros([n, SEQ], np.int32)
    mask = np.zeros([n, SEQ], np.int32)
    segments = np.zeros([n, SEQ], np.int32)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(5, 30, size=length)
        mask[i, :length] = 1
        segments[i, length // 2:length] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments,
            "label_ids": rng.integers(0, 3, size=n).astype(np.int32),
            "example_id": np.arange(n, dtype=np.int64)}


def _rows_by_id(batches):
    rows = {}
    for batch in batches:
        for i, example_id in enumerate(batch["example_id"].numpy()):
            assert example_id not in rows
            rows[example_id] = {k: v.numpy()[i] for k, v in batch.items()}
    return rows


def test_same_examples_and_bucket_shapes():
    data = _examples()
    ds = tf.data.Dataset.from_tensor_slices(data)
    assert sequence_feature_names(ds.element_spec, SEQ) == ["input_ids", "input_mask",
                                                            "segment_ids"]
    batches = list(bucket_by_length(ds, batch_size=4, seq_length=SEQ, bucket_size=BUCKET))
    widths = collections.Counter()
    for batch in batches:
        width = batch["input_ids"].shape[1]
        assert width in (8, 16, 24, 32, 40)
        assert batch["input_mask"].shape == batch["segment_ids"].shape == (len(batch["label_ids"]),
                                                                            width)
        lengths = batch["input_mask"].numpy().sum(1)
        # Each batch holds one bucket: the smallest that fits all of its examples.
        assert ((lengths + BUCKET - 1) // BUCKET * BUCKET == width).all()
        assert 1 <= len(lengths) <= 4
        widths[width] += 1
    assert len(widths) > 2
    rows = _rows_by_id(batches)
    assert sorted(rows) == list(range(len(data["label_ids"])))
    for i, row in rows.items():
        width = len(row["input_ids"])
        for name in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(row[name], data[name][i, :width])
            assert (data[name][i, width:] == 0).all()  # only padding was cut
        assert row["label_ids"] == data["label_ids"][i]


def test_drop_remainder_gives_full_batches():
    ds = tf.data.Dataset.from_tensor_slices(_examples())
    batches = list(bucket_by_length(ds, 4, SEQ, BUCKET, drop_remainder=True))
    assert batches and all(b["input_ids"].shape[0] == 4 for b in batches)
    assert len(_rows_by_id(batches)) == 4 * len(batches)


def test_model_outputs_equal_fixed_length():
    data = _examples(n=12, seed=1)
    config = BertConfig.from_dict(tiny_config(vocab_size=30, max_position_embeddings=SEQ))
    model = BertClassifier(config, num_classes=3)
    features = {"input_word_ids": data["input_ids"], "input_mask": data["input_mask"],
                "input_type_ids": data["segment_ids"]}
    fixed = model(features, training=False).numpy()
    ds = tf.data.Dataset.from_tensor_slices(dict(features, example_id=data["example_id"]))
    for batch in bucket_by_length(ds, 5, SEQ, BUCKET):
        logits = model({k: batch[k] for k in features}, training=False).numpy()
        np.testing.assert_allclose(logits, fixed[batch["example_id"].numpy()], atol=1e-5)


def test_errors():
    ds = tf.data.Dataset.from_tensor_slices(_examples())
    with pytest.raises(ValueError, match="'input_mask' has shape"):
        bucket_by_length(ds, 4, SEQ + 1, BUCKET)
    with pytest.raises(ValueError, match="a 'mask' feature"):
        bucket_by_length(ds, 4, SEQ, BUCKET, mask_key="mask")
    with pytest.raises(ValueError, match="bucket_size must be a positive int"):
        bucket_by_length(ds, 4, SEQ, 0)


def test_training_steps_give_the_same_weights():
    """A few SGD steps on bucketed batches = the same steps on the same batches at full length
    (dropout off so both see the same function): the loss and gradients are unchanged."""
    import keras

    data = _examples(n=12, seed=2)
    config = BertConfig.from_dict(tiny_config(vocab_size=30, max_position_embeddings=SEQ,
                                              hidden_dropout_prob=0.0,
                                              attention_probs_dropout_prob=0.0))
    keras.utils.set_random_seed(0)
    bucketed_model = BertClassifier(config, num_classes=3)
    fixed_model = BertClassifier(config, num_classes=3)
    names = {"input_ids": "input_word_ids", "input_mask": "input_mask",
             "segment_ids": "input_type_ids"}
    full = {names[k]: data[k] for k in names}
    bucketed_model(full)
    fixed_model(full)
    fixed_model.set_weights(bucketed_model.get_weights())

    def sgd_step(model, features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads):
            if grad is not None:
                variable.assign_sub(0.5 * tf.convert_to_tensor(grad))
        return float(loss)

    ds = tf.data.Dataset.from_tensor_slices(data)
    widths = set()
    for batch in bucket_by_length(ds, 4, SEQ, BUCKET):
        rows = batch["example_id"].numpy()
        widths.add(batch["input_ids"].shape[1])
        loss_b = sgd_step(bucketed_model, {names[k]: batch[k] for k in names}, batch["label_ids"])
        loss_f = sgd_step(fixed_model, {k: v[rows] for k, v in full.items()},
                          data["label_ids"][rows])
        assert abs(loss_b - loss_f) < 1e-5
    assert any(w < SEQ for w in widths)
    for a, b in zip(bucketed_model.get_weights(), fixed_model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_training_batches_of_dicts_and_tuples():
    """Dict examples keep their structure (per-token features cut with the ids); tuples
    `(features, *others)` too; full per-replica batches of one bucket either way."""
    data = _examples(n=64, seed=3)
    ds = tf.data.Dataset.from_tensor_slices(data)
    for batch in bucketed_training_batches(ds, 8, 4, SEQ, BUCKET):
        assert sorted(batch) == sorted(data)
        width = batch["input_ids"].shape[1]
        assert batch["segment_ids"].shape == (4, width) and batch["label_ids"].shape == (4,)
    tuples = ds.map(lambda d: ({k: d[k] for k in ("input_ids", "input_mask")}, d["label_ids"]))
    for features, labels in bucketed_training_batches(tuples, 8, 4, SEQ, BUCKET):
        assert features["input_ids"].shape == features["input_mask"].shape
        assert features["input_ids"].shape[1] % BUCKET == 0 and labels.shape == (4,)


def test_inference_batches_cut_only_sequence_features():
    data = _examples(n=12, seed=4)
    ds = tf.data.Dataset.from_tensor_slices((data, np.arange(12))).batch(6)
    for features, index in bucketed_inference_batches(ds, 6, 3, BUCKET):
        width = features["input_ids"].shape[1]  # the bucket of the 6 examples' longest
        pipeline_rows = np.arange(12).reshape(2, 6)[index.numpy()[0] // 6]
        longest = data["input_mask"][pipeline_rows].sum(1).max()
        assert width == -(-longest // BUCKET) * BUCKET and features["input_mask"].shape[0] == 3
        # example_id and label_ids [B] pass through uncut
        np.testing.assert_array_equal(features["example_id"], index)
        np.testing.assert_array_equal(features["input_ids"], data["input_ids"][index, :width])


def test_pad_to_seq_length():
    values = tf.reshape(tf.range(2 * 3 * 2, dtype=tf.float32), [2, 3, 2])
    out = pad_to_seq_length(values, 5, -1.0)
    assert out.shape == (2, 5, 2)
    np.testing.assert_array_equal(out[:, :3], values)
    assert (out.numpy()[:, 3:] == -1.0).all()
    ids = pad_to_seq_length(tf.ones([2, 5], tf.int32), 5)
    np.testing.assert_array_equal(ids, np.ones([2, 5]))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def padded(x):
        out = pad_to_seq_length(x, 8)
        assert out.shape.as_list() == [None, 8]  # static length: outputs all-gather and concat
        return out

    np.testing.assert_array_equal(padded(tf.ones([1, 2], tf.int32)), [[1, 1, 0, 0, 0, 0, 0, 0]])
