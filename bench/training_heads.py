"""The training steps bench/pretraining.py times: per --head, the bert_tf model and its Hugging
Face peer, one random batch for both, and each side's loss on it (bert_tf's as its training
tasks compute it; HF's inside its model from the label arguments). No flags: tests import it.
"""
from __future__ import annotations

import os
import sys
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from real_text import WNUT17_LABELS  # noqa: E402

NUM_TAGS = len(WNUT17_LABELS)


class Head(NamedTuple):
    """What one --head trains on each side (the losses: `bert_tf_loss`, `hf_labels`)."""

    ours: str  # the bert_tf.models class
    ours_kwargs: dict  # its head-size arguments
    hf: str  # the transformers class
    num_labels: int  # HF's config.num_labels (0: the model has none)
    position_logits: int  # head outputs at every position (for the FLOPs)
    what: str


HEADS = {
    "pretraining": Head("BertPretrainer", {}, "BertForPreTraining", 0, 0,
                        "pretraining step, {p} masked positions"),
    "classifier": Head("BertClassifier", {"num_classes": 2}, "BertForSequenceClassification", 2,
                       0, "fine-tuning step (2-class classifier)"),
    "token_classifier": Head("BertTokenClassifier", {"num_labels": NUM_TAGS},
                             "BertForTokenClassification", NUM_TAGS, NUM_TAGS,
                             f"fine-tuning step (token classifier, {NUM_TAGS} tags as "
                             "WNUT-17's, about a third of the positions unscored)"),
    "span_qa": Head("BertSpanQA", {}, "BertForQuestionAnswering", 2, 2,
                    "fine-tuning step (span QA, random start/end positions)"),
}


def random_batch(cfg, batch, seq, preds, seed=0):
    """One batch of random features with every head's labels (numpy, Google's names)."""
    import numpy as np

    rng = np.random.RandomState(seed)
    return {
        "input_ids": rng.randint(5, cfg["vocab_size"], (batch, seq)).astype("int32"),
        "input_mask": np.ones((batch, seq), "int32"),
        "segment_ids": (np.arange(seq)[None, :] >= seq // 2).repeat(batch, 0).astype("int32"),
        "masked_lm_positions": np.sort(rng.choice(np.arange(1, seq), (batch, preds)), -1).astype("int32"),
        "masked_lm_ids": rng.randint(5, cfg["vocab_size"], (batch, preds)).astype("int32"),
        "masked_lm_weights": np.ones((batch, preds), "float32"),
        "next_sentence_labels": rng.randint(0, 2, (batch, 1)).astype("int32"),
        "label_ids": rng.randint(0, NUM_TAGS, (batch, seq)).astype("int32"),
        # Weight 0 (HF: label -100) on about a third of the positions, as on non-first pieces.
        "label_weights": (rng.rand(batch, seq) >= 1 / 3).astype("float32"),
        "start_positions": rng.randint(1, seq, (batch,)).astype("int32"),
        "end_positions": rng.randint(1, seq, (batch,)).astype("int32"),
    }


def bert_tf_loss(head, model, f):
    """The head's loss as bert_tf's training tasks compute it (float32 scalar)."""
    import tensorflow as tf

    outputs = model(f, training=True)
    if head == "pretraining":
        return model.compute_pretraining_losses(f, outputs)["loss"]
    if head == "classifier":
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            f["next_sentence_labels"][:, 0], outputs))
    if head == "token_classifier":
        from bert_tf.models import token_classification_loss

        return token_classification_loss(f, outputs)["loss"]
    from bert_tf.training.tasks.question_answering import QuestionAnsweringTask

    return tf.reduce_mean(QuestionAnsweringTask.per_example_loss(
        outputs, (f["start_positions"], f["end_positions"])))


def hf_labels(head, f) -> dict:
    """The label arguments of the head's HF model (its loss is computed inside)."""
    import torch

    if head == "pretraining":
        labels = torch.full(f["input_ids"].shape, -100, dtype=torch.long)
        labels.scatter_(1, f["masked_lm_positions"].long(), f["masked_lm_ids"].long())
        return {"labels": labels, "next_sentence_label": f["next_sentence_labels"][:, 0].long()}
    if head == "classifier":
        return {"labels": f["next_sentence_labels"][:, 0].long()}
    if head == "token_classifier":
        return {"labels": torch.where(f["label_weights"] > 0, f["label_ids"].long(), -100)}
    return {"start_positions": f["start_positions"].long(),
            "end_positions": f["end_positions"].long()}
