"""SavedModel export for TF Serving: raw strings in, tokenization inside, TF Serving's layout.

    <export_dir>/<model_name>/<version>/
        saved_model.pb, variables/
        assets/vocab.txt                          the WordPiece vocab (TF Hub's `vocab_file`)
        assets.extra/tf_serving_warmup_requests   PredictionLog records TF Serving replays on load
        assets.extra/bert_tf_export.json          what was exported (task, casing, labels, config)

A version is written to a hidden temporary directory beside it and renamed into place, so TF
Serving (which polls the model directory) never sees a half-written version.

Example:
    >>> from bert_tf.serving.export import ExportSpec, export_from_checkpoint
    >>> path = export_from_checkpoint(  # doctest: +SKIP
    ...     ExportSpec.from_files("classifier", "out/mrpc/bert_config.json", "out/mrpc/vocab.txt",
    ...                           do_lower_case=True, max_seq_length=128, labels=["0", "1"]),
    ...     init_checkpoint="out/mrpc", export_dir="serving", model_name="mrpc")
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from bert_tf.checkpoints.google import (LABELS_NAME, load_google_checkpoint, read_run_info,
                                        resolve_checkpoint)
from bert_tf.checkpoints.model_files import load_model_files
from bert_tf.config import BertConfig
from bert_tf.errors import InputError
from bert_tf.data.conll import check_labels
from bert_tf.models import (BertClassifier, BertEncoder, BertPretrainer, BertSpanQA,
                            BertTokenClassifier, SentenceEmbedder)
from bert_tf.serving import layout
from bert_tf.serving.layout import saved_model_custom_ops
from bert_tf.serving.modules import SERVING_MODULES as _BASE_MODULES
from bert_tf.serving.modules import ServingModule
from bert_tf.serving.question_answering import QuestionAnsweringServingModule
from bert_tf.serving.token_classifier import TokenClassifierServingModule
from bert_tf.serving.warmup import write_warmup_requests
from bert_tf.text.packer import check_bucket_size
from bert_tf.text.preprocessor import BertPreprocessor
from bert_tf.text.vocab import Vocab, load_vocab

logger = logging.getLogger("bert_tf")

# The task modules of modules.py plus those in their own files (which import modules.py).
SERVING_MODULES = {**_BASE_MODULES, TokenClassifierServingModule.task: TokenClassifierServingModule,
                   QuestionAnsweringServingModule.task: QuestionAnsweringServingModule}
SERVING_TASKS = tuple(SERVING_MODULES)
# Tasks whose only signature is serving_default(text) (no text_pair).
_SINGLE_TEXT_TASKS = (TokenClassifierServingModule.task,)

METADATA_FILE = "bert_tf_export.json"
WARMUP_FILE = "tf_serving_warmup_requests"
# Request batches are packed to a multiple of this (capped at max_seq_length): 8 shapes at 128.
# Serving packs each request batch to its longest text rounded up to a multiple of this. Smaller
# is faster on CPUs (BERT-base fp32, SST-2/MRPC dev, one process alternating exports: 8 gave
# ~10% lower batch-1 latency and ~12% more batch-32 throughput than 16; 1 a few % more again);
# 8 keeps the shapes few and aligned for GPU tensor cores. Training buckets stay at 16 (XLA/TPU).
DEFAULT_BUCKET_SIZE = 8

DEFAULT_WARMUP_TEXTS = {
    "classifier": ["The movie was great.", "A short sentence that warms the model up."],
    "encoder": ["The movie was great.", "A short sentence that warms the model up."],
    "masked_lm": ["The capital of France is [MASK].", "A [MASK] sentence."],
    "embedding": ["The movie was great.", "A short sentence that warms the model up."],
    "token_classifier": ["George Washington went to Washington.", "A sentence with no names."],
    # question_answering: questions, answered from _WARMUP_CONTEXT.
    "question_answering": ["What is the capital of France?", "Which river runs through it?"],
}
_WARMUP_CONTEXT = ("Paris is the capital and largest city of France. The Seine runs through "
                   "the city, which has been a centre of finance, diplomacy and the arts.")
# Google's run_squad default; `doc_stride=None` means it for question answering.
QA_DOC_STRIDE = 128


class ExportError(InputError):
    """Bad export arguments (directory exists, labels disagree with the model, ...)."""


@dataclasses.dataclass
class ExportSpec:
    """What to export: the task, the model's config and the preprocessing it was trained with.

    `labels`: classifier label names in id order; empty for a regression model (one output);
    for a token_classifier its IOB2 tags (labels.txt). `doc_stride`: token_classifier window
    stride for long texts (default half a window); question_answering's doc-stride windows
    over long contexts (default 128, Google's). `max_query_length`, `max_answer_length`,
    `version_2_with_negative`, `null_score_diff_threshold`: Google's run_squad settings
    (question_answering).
    `top_k`: tokens returned per `[MASK]` (masked_lm). `dtype_policy`: the Keras policy the model
    is built with: `float32`; `mixed_bfloat16` (float32 weights cast to bfloat16 on every call);
    or `bfloat16`, the fastest on CPUs with AMX/AVX-512-bf16 and on TPUs: the weights are stored
    in bfloat16 (what the mixed policy multiplies with anyway), so no per-call weight casts;
    LayerNorm and the attention softmax still compute in float32. Outputs are float32.
    `bucket_size`: the SavedModel packs each request batch to its longest text rounded up to a
    multiple of it, capped at `max_seq_length` (None: always `max_seq_length`); the outputs are
    the same either way (see `bert_tf.serving.modules`). TFLite stays fixed-length.
    `multi_label`: a classifier trained with --multi_label: sigmoid probabilities and the labels
    above `threshold`, joined by `label_separator`.
    """

    task: str
    bert_config: BertConfig
    vocab: Vocab
    do_lower_case: bool = True
    max_seq_length: int = 128
    labels: list[str] = dataclasses.field(default_factory=list)
    top_k: int = 5
    dtype_policy: str = "float32"
    doc_stride: int | None = None
    bucket_size: int | None = DEFAULT_BUCKET_SIZE
    multi_label: bool = False
    threshold: float = 0.5
    label_separator: str = ","
    # task "embedding": the SentenceEmbedder's pooling (see bert_tf.models.sentence_embedder).
    pooling_modes: tuple[str, ...] = ("mean",)
    normalize: bool = False
    max_query_length: int = 64
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0

    def __post_init__(self):
        if self.task not in SERVING_TASKS:
            raise ExportError(f"unknown task {self.task!r}: expected one of "
                              f"{', '.join(SERVING_TASKS)}")
        self.bert_config.check_max_seq_length(self.max_seq_length, "max_seq_length")
        self.bert_config.check_vocab_fits(len(self.vocab), self.vocab.path)
        self.labels = [str(x) for x in self.labels or []]
        if self.task == TokenClassifierServingModule.task:
            self.labels = check_labels(self.labels, "token_classifier labels")
        if self.multi_label and (self.task != "classifier" or not self.labels
                                 or not 0.0 < self.threshold < 1.0):
            raise ExportError(f"multi_label needs the classifier task, its labels and a "
                              f"threshold in (0, 1); got task {self.task!r}, labels "
                              f"{self.labels}, threshold {self.threshold!r}")
        try:
            check_bucket_size(self.bucket_size)
        except (TypeError, ValueError) as e:
            raise ExportError(str(e)) from None
        if self.task == QuestionAnsweringServingModule.task:
            self._check_question_answering()

    @classmethod
    def for_embedder(cls, embedder: SentenceEmbedder, **kwargs) -> "ExportSpec":
        """The spec of a SentenceEmbedder with its preprocessor's vocab, casing, seq_length."""
        pre = embedder.preprocessor
        return cls(task="embedding", bert_config=embedder.config, vocab=pre.vocab,
                   do_lower_case=pre.do_lower_case, max_seq_length=pre.seq_length,
                   pooling_modes=embedder.pooling_modes, normalize=embedder.normalize, **kwargs)

    def _check_question_answering(self) -> None:
        if self.max_query_length + 4 > self.max_seq_length:
            raise ExportError(f"--max_seq_length={self.max_seq_length} leaves no room for a "
                              f"context after --max_query_length={self.max_query_length} "
                              "question tokens and [CLS]/[SEP]/[SEP]")
        stride = QA_DOC_STRIDE if self.doc_stride is None else self.doc_stride
        if min(stride, self.max_answer_length) < 1:
            raise ExportError(f"--doc_stride ({stride}) and --max_answer_length "
                              f"({self.max_answer_length}) must be positive")

    @classmethod
    def from_files(cls, task: str, bert_config_file: str | os.PathLike,
                   vocab_file: str | os.PathLike, **kwargs) -> "ExportSpec":
        return cls(task=task, bert_config=BertConfig.from_json_file(bert_config_file),
                   vocab=load_vocab(vocab_file), **kwargs)

    def to_json(self) -> dict[str, Any]:
        out = {"task": self.task, "do_lower_case": self.do_lower_case,
               "max_seq_length": self.max_seq_length, "labels": self.labels,
               "top_k": self.top_k, "dtype_policy": self.dtype_policy,
               "doc_stride": self.doc_stride, "bucket_size": self.bucket_size,
               "bert_config": self.bert_config.to_dict()}
        if self.task == "classifier":
            out.update(multi_label=self.multi_label, threshold=self.threshold,
                       label_separator=self.label_separator)
        if self.task == "embedding":
            out.update(pooling_modes=list(self.pooling_modes), normalize=self.normalize)
        out.update({k: getattr(self, k) for k in _QA_FIELDS})
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], vocab: Vocab) -> "ExportSpec":
        return cls(task=data["task"], bert_config=BertConfig.from_dict(data["bert_config"]),
                   vocab=vocab, do_lower_case=data["do_lower_case"],
                   max_seq_length=data["max_seq_length"], labels=data.get("labels", []),
                   top_k=data.get("top_k", 5), dtype_policy=data.get("dtype_policy", "float32"),
                   doc_stride=data.get("doc_stride"),
                   bucket_size=data.get("bucket_size"),  # exports before buckets: fixed
                   multi_label=data.get("multi_label", False),
                   threshold=data.get("threshold", 0.5),
                   label_separator=data.get("label_separator", ","),
                   pooling_modes=tuple(data.get("pooling_modes", ("mean",))),
                   normalize=data.get("normalize", False),
                   **{k: data[k] for k in _QA_FIELDS if k in data})

    def preprocessor(self, tflite_compatible: bool = False) -> BertPreprocessor:
        return BertPreprocessor(self.vocab, do_lower_case=self.do_lower_case,
                                seq_length=self.max_seq_length,
                                tflite_compatible=tflite_compatible,
                                max_position_embeddings=self.bert_config.max_position_embeddings,
                                bucket_size=None if tflite_compatible else self.bucket_size)

    def build_model(self) -> keras.Model:
        """A new (randomly initialised) Keras model for the task."""
        dtype = None if self.dtype_policy == "float32" else keras.DTypePolicy(self.dtype_policy)
        if self.task == "classifier":
            return BertClassifier(self.bert_config, num_classes=max(1, len(self.labels)),
                                  dtype=dtype)
        if self.task == "encoder":
            return BertEncoder(self.bert_config, dtype=dtype)
        if self.task == "embedding":
            return SentenceEmbedder(BertEncoder(self.bert_config, dtype=dtype),
                                    self.preprocessor(), self.pooling_modes, self.normalize)
        if self.task == TokenClassifierServingModule.task:
            return BertTokenClassifier(BertEncoder(self.bert_config, dtype=dtype),
                                       num_labels=len(self.labels))
        if self.task == QuestionAnsweringServingModule.task:
            return BertSpanQA(BertEncoder(self.bert_config, dtype=dtype))
        return BertPretrainer(self.bert_config, dtype=dtype)

    def serving_module(self, model: keras.Model,
                       preprocessor: BertPreprocessor | None = None) -> ServingModule:
        """Wraps `model` (built by `build_model`) with the preprocessor's string signatures."""
        preprocessor = preprocessor or self.preprocessor()
        if self.task == "classifier":
            return SERVING_MODULES["classifier"](
                model, preprocessor, labels=self.labels, multi_label=self.multi_label,
                threshold=self.threshold, label_separator=self.label_separator)
        if self.task == "masked_lm":
            return SERVING_MODULES["masked_lm"](model, preprocessor, top_k=self.top_k)
        if self.task == TokenClassifierServingModule.task:
            return TokenClassifierServingModule(model, preprocessor, self.labels, self.doc_stride)
        if self.task == QuestionAnsweringServingModule.task:
            return QuestionAnsweringServingModule(
                model, preprocessor,
                doc_stride=QA_DOC_STRIDE if self.doc_stride is None else self.doc_stride,
                **{k: getattr(self, k) for k in _QA_FIELDS})
        return SERVING_MODULES[self.task](model, preprocessor)


_QA_FIELDS = ("max_query_length", "max_answer_length", "version_2_with_negative",
              "null_score_diff_threshold")


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_num_classes(init_checkpoint: str | os.PathLike) -> int | None:
    """Rows of a run_classifier checkpoint's `output_weights` [C, H], or None if it has none."""
    prefix = resolve_checkpoint(init_checkpoint)
    shapes = dict(tf.train.list_variables(prefix))
    shape = shapes.get("output_weights")
    return int(shape[0]) if shape else None


def read_labels_file(init_checkpoint: str | os.PathLike) -> list[str] | None:
    """The labels.txt run_classifier.py writes beside its checkpoint, or None if absent."""
    prefix = resolve_checkpoint(init_checkpoint)
    path = os.path.join(os.path.dirname(prefix), LABELS_NAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def multi_label_settings(init_checkpoint: str | os.PathLike) -> dict[str, Any]:
    """{multi_label, threshold, label_separator} of a run_classifier.py --multi_label run, from
    the run_info.json beside its checkpoint; {} for any other checkpoint (so a multi-label
    classifier is never exported with softmax probabilities by mistake)."""
    info = read_run_info(init_checkpoint)
    if not info.get("multi_label"):
        return {}
    settings = {"multi_label": True}
    for key, field in (("label_threshold", "threshold"), ("label_separator", "label_separator")):
        if key in info:
            settings[field] = info[key]
    return settings


def resolve_labels(init_checkpoint: str | os.PathLike,
                   labels: Sequence[str] | None = None) -> list[str]:
    """Label names for a classifier checkpoint: `labels` if given, else labels.txt beside the
    checkpoint, else (with a warning) "0".."C-1"; [] for a regression head (one output).
    Raises ExportError if the checkpoint has no classifier head or the count disagrees."""
    num_classes = checkpoint_num_classes(init_checkpoint)
    if num_classes is None:
        raise ExportError(
            f"checkpoint {resolve_checkpoint(init_checkpoint)} has no classifier head "
            "(output_weights/output_bias): fine-tune it with run_classifier.py first, or export "
            "it with --task=encoder or --task=masked_lm")
    source = "--labels"
    if not labels:
        labels, source = read_labels_file(init_checkpoint), LABELS_NAME
    if not labels:
        if num_classes == 1:
            return []
        labels = [str(i) for i in range(num_classes)]
        logger.warning("no labels given and no %s beside the checkpoint: naming the %d classes "
                       "%s", LABELS_NAME, num_classes, ", ".join(labels))
        return labels
    labels = [str(x) for x in labels]
    if num_classes == 1:
        raise ExportError(f"the checkpoint's classifier has one output (regression) but "
                          f"{source} names {len(labels)} labels {labels}")
    if len(labels) != num_classes:
        raise ExportError(f"the checkpoint's classifier has {num_classes} classes but {source} "
                          f"names {len(labels)}: {labels}")
    return labels


def resolve_token_labels(init_checkpoint: str | os.PathLike,
                         labels: Sequence[str] | None = None) -> list[str]:
    """IOB2 labels of a token-classifier checkpoint: `labels` if given, else labels.txt beside
    it (required: entity types need names); their count must match its `output_weights`."""
    num_labels = checkpoint_num_classes(init_checkpoint)
    if num_labels is None:
        raise ExportError(f"checkpoint {resolve_checkpoint(init_checkpoint)} has no token "
                          "classification head (output_weights/output_bias): fine-tune it first")
    source = "--labels"
    if not labels:
        labels, source = read_labels_file(init_checkpoint), LABELS_NAME
    if not labels:
        raise ExportError(f"no --labels given and no {LABELS_NAME} beside "
                          f"{resolve_checkpoint(init_checkpoint)}: a token classifier needs its "
                          "IOB2 tags in id order")
    labels = check_labels(labels, source)
    if len(labels) != num_labels:
        raise ExportError(f"the checkpoint's head has {num_labels} labels but {source} names "
                          f"{len(labels)}: {labels}")
    return labels


def spec_from_checkpoint(task: str, init_checkpoint: str, bert_config_file: str | None,
                vocab_file: str | None, do_lower_case: bool, max_seq_length: int,
                labels: list[str] | None, **spec_kwargs):
    """The export tools' `ExportSpec` from their model flags: config and vocab as
    `checkpoints.model_files.load_model_files`, classifier labels from `--labels` or labels.txt
    beside the checkpoint, and for a classifier the multi-label settings its run recorded
    (`multi_label_settings`) where `spec_kwargs` leaves them out or None."""
    config, vocab = load_model_files(init_checkpoint, bert_config_file, vocab_file,
                                     max_seq_length, do_lower_case)
    given = {k: spec_kwargs.pop(k) for k in ("multi_label", "threshold", "label_separator")
             if k in spec_kwargs}
    given = {k: v for k, v in given.items() if v is not None}
    if task == "classifier":
        labels = resolve_labels(init_checkpoint, labels)
        given = {**multi_label_settings(init_checkpoint), **given}
    elif task == TokenClassifierServingModule.task:
        labels = resolve_token_labels(init_checkpoint, labels)
    elif labels:
        raise ExportError(f"--labels applies to --task=classifier, not --task={task}")
    return ExportSpec(task, config, vocab, do_lower_case=do_lower_case,
                      max_seq_length=max_seq_length, labels=labels or [], **given, **spec_kwargs)


def load_model(spec: ExportSpec, init_checkpoint: str | os.PathLike) -> keras.Model:
    """Builds the task's model and loads a Google-format checkpoint strictly (a checkpoint that
    does not fit the config raises the loader's listing of every mismatch)."""
    model = spec.build_model()
    load_google_checkpoint(model, init_checkpoint, strict=True)
    return model


# ----------------------------------------------------------------------------- layout
def version_dir(export_dir: str | os.PathLike, model_name: str, version: int | None = None,
                overwrite: bool = False) -> tuple[str, int]:
    """`<export_dir>/<model_name>/<version>` and the version (default: newest existing + 1).
    Raises ExportError if it exists and `overwrite` is false."""
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ExportError(f"model_name must be a plain directory name, got {model_name!r}")
    model_dir = os.path.join(os.fspath(export_dir), model_name)
    if version is None:
        version = (layout.versions(model_dir) or [0])[-1] + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer, got {version!r}")
    path = os.path.join(model_dir, str(version))
    if tf.io.gfile.exists(path) and not overwrite:
        raise ExportError(f"{path} already exists: pass --overwrite to replace it, or a new "
                          "--version")
    return path, version


def export_saved_model(module: ServingModule, spec: ExportSpec, export_dir: str | os.PathLike,
                       model_name: str, version: int | None = None, overwrite: bool = False,
                       warmup_texts: Sequence[str] | None = None) -> str:
    """Writes `module` as `<export_dir>/<model_name>/<version>/` (see the module docstring).

    Returns the version directory. The vocab is stored as `assets/vocab.txt` (also reachable as
    `loaded.vocab_file`) and `do_lower_case` as `loaded.do_lower_case`, as TF Hub's
    preprocessors do.
    """
    path, version = version_dir(export_dir, model_name, version, overwrite)
    model_dir = os.path.dirname(path)
    tf.io.gfile.makedirs(model_dir)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        vocab_path = os.path.join(staging, "vocab", "vocab.txt")
        os.makedirs(os.path.dirname(vocab_path))
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in spec.vocab.tokens))
        module.vocab_file = tf.saved_model.Asset(vocab_path)
        module.do_lower_case = tf.Variable(spec.do_lower_case, trainable=False,
                                           name="do_lower_case")
        signatures = module.signatures()
        saved = os.path.join(staging, "saved_model")
        try:
            tf.saved_model.save(module, saved, signatures=signatures)
        except (tf.errors.ResourceExhaustedError, tf.errors.UnknownError,
                tf.errors.PermissionDeniedError, tf.errors.FailedPreconditionError) as e:
            # TensorFlow's file writers report a full disk or a read-only directory this way.
            reason = str(getattr(e, "message", e)).splitlines()[0]
            raise ExportError(f"cannot write the SavedModel under {model_dir}: {reason}") from None
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        metadata = dict(spec.to_json(), signatures=_describe_signatures(signatures),
                        vocab_size=len(spec.vocab), custom_ops=saved_model_custom_ops(saved))
        with open(os.path.join(extra, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2)
        texts = list(warmup_texts or DEFAULT_WARMUP_TEXTS[spec.task])
        write_warmup_requests(os.path.join(extra, WARMUP_FILE), model_name,
                              warmup_requests(spec.task, texts))
        if tf.io.gfile.exists(path):  # overwrite: swap, then delete the old version
            old = tempfile.mkdtemp(prefix=f".old-{version}-", dir=model_dir)
            os.replace(path, os.path.join(old, "v"))
            os.replace(saved, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(saved, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported %s model %s version %d to %s", spec.task, model_name, version, path)
    return path


def export_from_checkpoint(spec: ExportSpec, init_checkpoint: str | os.PathLike,
                           export_dir: str | os.PathLike, model_name: str,
                           version: int | None = None, overwrite: bool = False,
                           warmup_texts: Sequence[str] | None = None) -> str:
    """Loads a Google-format checkpoint into the task's model and exports it."""
    version_dir(export_dir, model_name, version, overwrite)  # fail before the slow part
    model = load_model(spec, init_checkpoint)
    return export_saved_model(spec.serving_module(model), spec, export_dir, model_name, version,
                              overwrite, warmup_texts)


def warmup_requests(task: str, texts: Sequence[str]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(signature, inputs) pairs for the warmup file: each string signature at batch 1 and at
    the batch of all `texts`."""
    texts = np.array(list(texts), dtype=object)
    if task == QuestionAnsweringServingModule.task:
        contexts = np.array([_WARMUP_CONTEXT] * len(texts), dtype=object)
        return [("serving_default", {"question": texts[:1], "context": contexts[:1]}),
                ("serving_default", {"question": texts, "context": contexts})]
    out = [("serving_default", {"text": texts[:1]}), ("serving_default", {"text": texts})]
    if task not in _SINGLE_TEXT_TASKS:
        out.append(("text_pair", {"text": texts[:1], "text_b": texts[-1:]}))
    return out


def _describe_signatures(signatures) -> dict[str, Any]:
    def spec(s):
        return {"dtype": s.dtype.name, "shape": s.shape.as_list() if s.shape.rank is not None
                else None}

    out = {}
    for name, fn in signatures.items():
        inputs = tf.nest.flatten(fn.structured_input_signature)
        out[name] = {"inputs": {v.name: spec(v) for v in inputs},
                     "outputs": {k: spec(v) for k, v in fn.structured_outputs.items()}}
    return out


# ----------------------------------------------------------------------------- reading back
def read_export_metadata(saved_model_dir: str | os.PathLike) -> dict[str, Any]:
    """The bert_tf_export.json of an exported version directory."""
    path = os.path.join(os.fspath(saved_model_dir), "assets.extra", METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise ExportError(f"{saved_model_dir} is not a bert_tf export (no assets.extra/"
                          f"{METADATA_FILE})")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def load_exported(saved_model_dir: str | os.PathLike) -> tuple[ExportSpec, keras.Model]:
    """Rebuilds the Keras model of an exported SavedModel with its trained weights (to convert
    it to TFLite or re-export it): the spec from bert_tf_export.json, the vocab from
    assets/vocab.txt, the weights from the SavedModel's variables."""
    import tensorflow_text  # noqa: F401  (registers the tf-text ops the graph uses)

    saved_model_dir = os.fspath(saved_model_dir)
    vocab = load_vocab(os.path.join(saved_model_dir, "assets", "vocab.txt"))
    spec = ExportSpec.from_json(read_export_metadata(saved_model_dir), vocab)
    model = spec.build_model()
    loaded = tf.saved_model.load(saved_model_dir)
    saved = list(loaded.tf_vars)
    if len(saved) != len(model.variables) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in zip(saved, model.variables)):
        raise ExportError(f"{saved_model_dir}: its {len(saved)} variables do not match the "
                          f"{len(model.variables)} of a {spec.task} built from its config")
    for target, value in zip(model.variables, saved):
        target.assign(value.numpy())
    return spec, model


__all__ = ["ExportError", "ExportSpec", "SERVING_TASKS", "checkpoint_num_classes",
           "export_from_checkpoint", "export_saved_model", "load_exported", "load_model",
           "read_export_metadata", "resolve_labels", "resolve_token_labels",
           "saved_model_custom_ops", "version_dir",
           "warmup_requests"]
