"""Test support: tiny token-classifier (NER) and question-answering SavedModels in TF Serving's
layout, exported once per test session (`export_ner(root)` / `export_qa(root)` are cached per
root: pass `tmp_path_factory.getbasetemp()`), for the serving client and compare tests.

The texts, vocabularies and the QA model are those of test_serving_token_classifier.py and
test_serving_question_answering.py: random weights with the heads scaled up, so the models
predict entities and answer spans (and, for the SQuAD v2.0 model, no-answers) rather than
all-"O" or ties.

Import from tests as ``import serving_tasks`` (tests/ has no ``__init__.py``).
"""
from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np

import test_serving_question_answering as qa_tests
import test_serving_token_classifier as ner_tests
from bert_tf.config import BertConfig
from bert_tf.serving.export import ExportSpec, export_saved_model
from bert_tf.text.vocab import Vocab

NER_LABELS = ner_tests.LABELS
NER_STRIDE = ner_tests.STRIDE
# English, "", accented, Chinese, several windows long, accented capitals, out of vocab.
NER_TEXTS = ner_tests.TEXTS


def qa_lines() -> list[str]:
    """`question ||| context` lines: a context of several windows, one window, a tiny one, one
    with accents and words outside the vocab, an empty one."""
    questions, contexts = qa_tests._texts()
    return [f"{q} ||| {c}" for q, c in zip(questions, contexts)]


@dataclasses.dataclass
class Export:
    """An exported version directory (`path`, `<root>/<model_name>/1`) with the Keras model
    and spec it was exported from."""

    path: str
    model: keras.Model
    spec: ExportSpec

    @property
    def base_path(self) -> str:
        return os.path.dirname(self.path)


@functools.cache
def export_ner(root: str) -> Export:
    """A token_classifier export `<root>/ner/1` (window ner_tests.SEQ, stride NER_STRIDE)."""
    keras.utils.set_random_seed(7)
    spec = ExportSpec("token_classifier", BertConfig.from_dict(ner_tests.CONFIG),
                      Vocab(ner_tests.VOCAB), do_lower_case=True, max_seq_length=ner_tests.SEQ,
                      labels=NER_LABELS, doc_stride=NER_STRIDE)
    model = spec.build_model()
    head = model.classifier
    head.output_weights.assign(head.output_weights.numpy() * 200)
    head.output_bias.assign(np.array([1.0, 0, 0, 0, 0], np.float32))
    path = export_saved_model(spec.serving_module(model), spec, root, "ner")
    return Export(path, model, spec)


@functools.cache
def export_qa(root: str) -> Export:
    """A SQuAD v2.0 question_answering export `<root>/qa/1` (no-answer threshold 0)."""
    spec, model = qa_tests._model(seed=5)
    spec.version_2_with_negative = True
    path = export_saved_model(spec.serving_module(model), spec, root, "qa")
    return Export(path, model, spec)
