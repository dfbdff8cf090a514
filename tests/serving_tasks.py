"""Test support: tiny token-classifier (NER) and question-answering SavedModels in TF Serving's
layout, exported once per test session (`export_ner(root)` / `export_qa(root)` are cached per
root: pass `tmp_path_factory.getbasetemp()`), for the serving client and compare tests.

Random weights with the heads scaled up, so the models predict entities and answer spans (and,
for the SQuAD v2.0 model, no-answers) rather than all-"O" or ties.

Import from tests as ``import serving_tasks`` (tests/ has no ``__init__.py``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import random

import keras
import numpy as np

from bert_tf.config import BertConfig
from bert_tf.serving.export import ExportSpec, export_saved_model
from bert_tf.text.vocab import Vocab

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

NER_VOCAB = SPECIAL + [
    "the", "cat", "sat", "on", "mat", "in", "new", "york", "paris", "george", "washington",
    "went", "to", "cafe", "##s", "un", "##aff", "##able", ",", ".", "!", "'", "中", "国", "北",
    "京", "人", "在", "é", "ecole"]
NER_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
NER_SEQ, NER_STRIDE = 12, 4
NER_TEXTS = [
    "George Washington went to Washington.",
    "Café in Paris, un café à New York!",                      # accented (uncased: stripped)
    "北京人在中国，他们在北京。",  # Chinese: one word per character
    "the cat sat on the mat in new york " * 4 + "George Washington",  # several windows
    "",
    "xyzzy",
]

QA_WORDS = [
    "the", "capital", "of", "france", "is", "paris", "river", "seine", "runs", "through", "city",
    "which", "what", "where", "who", "cafe", "museum", "old", "new", "bridge", "##s", "##ed", "a",
    "an", "in", "on", ",", ".", "?", "'", "1889", "eiffel", "tower", "built"]
QA_SEQ, QA_STRIDE, QA_QUERY, QA_ANSWER = 24, 5, 6, 4


def qa_lines(seed: int = 3) -> list[str]:
    """`question ||| context` lines: a context of several windows, one window, a tiny one, one
    with accents and words outside the vocab, an empty one."""
    rng = random.Random(seed)
    plain = [w for w in QA_WORDS if not w.startswith("##")]

    def sentence(n):
        words = [rng.choice(plain + ["Paris,", "Café", "Seine's", "bridges", "Zürich"])
                 for _ in range(n)]
        return " ".join(words).capitalize() + "."

    contexts = [sentence(70), sentence(12), "Paris.", sentence(40), "", sentence(25)]
    questions = ["What is the capital of France?", "Where is the old bridge?", "Who?",
                 "Which museum is in the city of Paris near the river?", "What?", "Is it new?"]
    return [f"{q} ||| {c}" for q, c in zip(questions, contexts)]


@dataclasses.dataclass
class Export:
    """An exported version directory (`path`, under `<root>/<model_name>/1`) with the Keras
    model and spec it was exported from."""

    path: str
    model: keras.Model
    spec: ExportSpec

    @property
    def base_path(self) -> str:
        return os.path.dirname(self.path)


def _config(vocab_size: int, max_position_embeddings: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=37,
                      max_position_embeddings=max_position_embeddings)


@functools.cache
def export_ner(root: str) -> Export:
    """A token_classifier export `<root>/ner/1` (window NER_SEQ, stride NER_STRIDE)."""
    keras.utils.set_random_seed(7)
    spec = ExportSpec("token_classifier", _config(len(NER_VOCAB), 40), Vocab(NER_VOCAB),
                      do_lower_case=True, max_seq_length=NER_SEQ, labels=NER_LABELS,
                      doc_stride=NER_STRIDE)
    model = spec.build_model()
    head = model.classifier
    head.output_weights.assign(head.output_weights.numpy() * 200)
    head.output_bias.assign(np.array([1.0, 0, 0, 0, 0], np.float32))
    path = export_saved_model(spec.serving_module(model), spec, os.fspath(root), "ner")
    return Export(path, model, spec)


@functools.cache
def export_qa(root: str) -> Export:
    """A SQuAD v2.0 question_answering export `<root>/qa/1` (no-answer threshold 0)."""
    keras.utils.set_random_seed(5)
    spec = ExportSpec("question_answering", _config(len(SPECIAL) + len(QA_WORDS), 64),
                      Vocab(SPECIAL + QA_WORDS), do_lower_case=True, max_seq_length=QA_SEQ,
                      doc_stride=QA_STRIDE, max_query_length=QA_QUERY,
                      max_answer_length=QA_ANSWER, version_2_with_negative=True)
    model = spec.build_model()
    head = model.span_head
    head.output_weights.assign(head.output_weights.numpy() * 20)
    path = export_saved_model(spec.serving_module(model), spec, os.fspath(root), "qa")
    return Export(path, model, spec)
