"""QuestionAnsweringTask with length buckets (`bucket_size`): answer positions always inside the
bucket, the same weights after a few steps and the same predictions (n-best logits to 1e-5) as
at the fixed length. Tiny BERT on CPU; the generated SQuAD files of test_run_squad."""
import io
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_run_squad as S  # noqa: E402
from shared_data import GOOGLE_CKPT_INDEX, SHARED_DATA  # noqa: E402
from test_training_bucketing import _Context, assert_same_training  # noqa: E402
from bert_tf.data import squad  # noqa: E402
from bert_tf.text.vocab import Vocab  # noqa: E402
from bert_tf.training.squad import QuestionAnsweringOptions, SquadTrainer  # noqa: E402
from bert_tf.training.tasks.question_answering import (  # noqa: E402
    PADDING_LOGIT, QuestionAnsweringTask)

SEQ = 24  # question "what comes after zz ?" = 5 pieces: 16 context pieces per window
BUCKET = 4
pretrained = S.pretrained


def task_for(tmp_path, bucket_size, **overrides):
    options = QuestionAnsweringOptions(
        output_dir=str(tmp_path), max_seq_length=SEQ, doc_stride=8, max_query_length=8,
        bucket_size=bucket_size, seed=0, log_steps=1, clip_norm=0.1, learning_rate=1e-3,
        n_best_size=24, **overrides)
    return QuestionAnsweringTask(S.CONFIG, Vocab(S.VOCAB), options)


def prepared(task, tmp_path, name, n, seed, is_training, v2=True, context_words=(2, 30)):
    """A generated SQuAD file: short contexts (one short window) to long ones (several full
    windows, and v1-style out-of-window answers at position 0)."""
    path = S._write(tmp_path / f"{name}.json", S.squad_json(n, seed, v2, context_words))
    return task.prepare(squad.read_squad_examples(path, is_training, v2), is_training)


def assert_positions_on_real_tokens(features):
    """Start/end positions lie in the window's real tokens (the answer's pieces, or [CLS])."""
    for f in features:
        length = sum(f.input_mask)
        assert 0 <= f.start_position <= f.end_position < length, f.unique_id
        assert f.start_position > 0 or f.end_position == 0


def test_answer_positions_lie_inside_the_bucket(tmp_path):
    task = task_for(tmp_path, BUCKET)
    data = prepared(task, tmp_path, "train", 40, 0, True)
    assert_positions_on_real_tokens(data.features)
    lengths = np.array([sum(f.input_mask) for f in data.features])
    assert len(set(-(-lengths // BUCKET))) >= 3 and (lengths == SEQ).any()
    assert {f.start_position == 0 for f in data.features} == {True, False}
    n = len(data.features)
    for features, (start, end) in task.train_dataset(data, 8)(_Context(replicas=2)).take(n // 4):
        width = features["input_ids"].shape[1]
        mask = features["input_mask"].numpy()
        assert width % BUCKET == 0 and mask.sum(1).max() > width - BUCKET
        assert {tuple(t.shape) for t in features.values()} == {(4, width)}
        rows = np.arange(4)
        assert (start.numpy() < width).all() and (end.numpy() < width).all()
        assert mask[rows, start.numpy()].all() and mask[rows, end.numpy()].all()


SQUAD_TRAIN = SHARED_DATA / "squad" / "train-v1.1.rebuilt.json"


@pytest.mark.skipif(not SQUAD_TRAIN.is_file(), reason="no SQuAD files")
def test_squad_train_positions_lie_on_real_tokens(tmp_path):
    """Real SQuAD v1.1 questions (the first article's 269) under Google's uncased vocab at
    Google's 384/128/64."""
    with open(SQUAD_TRAIN, encoding="utf-8") as f:
        articles = json.load(f)["data"][:1]
    path = S._write(tmp_path / "article.json", {"version": "1.1", "data": articles})
    examples = squad.read_squad_examples(path, True, False)
    assert len(examples) > 200
    options = QuestionAnsweringOptions(output_dir=str(tmp_path))
    config = dict(S.CONFIG, vocab_size=30522, max_position_embeddings=512)
    vocab = str(GOOGLE_CKPT_INDEX / "uncased_L-4_H-256_A-4" / "vocab.txt")
    features = QuestionAnsweringTask(config, vocab, options).prepare(examples, True).features
    assert len(features) >= len(examples)
    assert_positions_on_real_tokens(features)


def trainer(task, steps=3):
    return SquadTrainer(task, num_train_steps=steps, progress_stream=io.StringIO())


def test_bucketed_training_equals_fixed_length(tmp_path, pretrained):
    # Contexts of 6-10 words: every window has 15-19 tokens, inside the first bucket of 20, so
    # batches hold the same windows either way and only padding is cut: the same weights up
    # to summation order (the softmax runs over the real tokens in both).
    runs = {}
    for bucket_size in (0, 20):
        task = task_for(tmp_path / str(bucket_size), bucket_size, train_batch_size=8,
                        init_checkpoint=pretrained)
        data = prepared(task, tmp_path, "train", 48, 0, True, False, (6, 10))
        if bucket_size:
            first, _ = next(iter(task.train_dataset(data, 8)(_Context())))
            assert first["input_ids"].shape == (8, 20)  # cut from SEQ = 24
        runs[bucket_size] = trainer(task)
        runs[bucket_size].train(data)
    assert_same_training(runs[20], runs[0])


def test_bucketed_prediction_equals_fixed_length(tmp_path, pretrained):
    # v2 (null odds) with a threshold no null score reaches: every question gets a span.
    task = task_for(tmp_path, 0, init_checkpoint=pretrained, predict_batch_size=4,
                    version_2_with_negative=True, null_score_diff_threshold=1e6)
    t = trainer(task)
    t.train(prepared(task, tmp_path, "train", 64, 0, True))
    dev = prepared(task, tmp_path, "dev", 13, 1, False)
    lengths = np.array([sum(f.input_mask) for f in dev.features])
    assert len(set(-(-lengths // BUCKET))) >= 3 and len(lengths) % 4  # several buckets, padded
    fixed_metrics = t.evaluate(dev, write_results=False)
    fixed = task.last_predictions
    task.bucket_size = BUCKET
    cut_metrics = t.evaluate(dev, write_results=False)
    cut = task.last_predictions
    assert cut[0] == fixed[0]  # predictions.json
    S.assert_nbest_close(cut[1], fixed[1])  # nbest_predictions.json
    np.testing.assert_allclose([cut[2][k] for k in fixed[2]], list(fixed[2].values()),
                               atol=1e-5)  # null_odds.json
    assert len(set(fixed[0].values())) > 5  # spans of many windows
    assert cut_metrics.keys() == fixed_metrics.keys()
    for key in fixed_metrics:
        assert cut_metrics[key] == pytest.approx(fixed_metrics[key], abs=1e-6), key


def test_padding_positions_take_no_part(tmp_path, pretrained):
    """Logits at padding positions are PADDING_LOGIT (outside the softmax, last in the n-best
    order); a window's loss is the same at any padded length."""
    task = task_for(tmp_path, 0, init_checkpoint=pretrained)
    data = prepared(task, tmp_path, "train", 8, 2, True, False, (6, 10))
    features, positions = next(iter(task.train_dataset(data, 8)(_Context())))
    model = task.build_model()
    logits = task.window_logits(model, features, training=False)
    mask = features["input_mask"].numpy().astype(bool)
    assert not mask.all()
    for value in logits.values():
        assert (value.numpy()[~mask] == PADDING_LOGIT).all()
        assert (value.numpy()[mask] > PADDING_LOGIT / 2).all()
    width = int(mask.sum(1).max())
    short = {k: v[:, :width] for k, v in features.items()}
    for name in ("start_logits", "end_logits"):
        np.testing.assert_allclose(task.window_logits(model, short, False)[name],
                                   logits[name][:, :width], atol=1e-5)
    totals = tf.constant([8.0])
    full_loss, _ = task.objective(model, (features, positions), totals)
    short_loss, _ = task.objective(model, (short, positions), totals)
    np.testing.assert_allclose(float(short_loss), float(full_loss), rtol=1e-6)
