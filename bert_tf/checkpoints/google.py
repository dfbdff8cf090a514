"""Read and write Google's original TF1 BERT checkpoints (`bert_model.ckpt` + `bert_config.json`).

Example:
    >>> from bert_tf import BertPretrainer
    >>> from bert_tf.checkpoints import build_from_google_checkpoint, save_google_checkpoint
    >>> model = build_from_google_checkpoint(BertPretrainer, "uncased_L-12_H-768_A-12")  # doctest: +SKIP
    >>> save_google_checkpoint(model, "/tmp/mine/bert_model.ckpt")  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.checkpoints.names import (ENCODER, Entry, google_name_table, group_of,
                                       is_training_state)
from bert_tf.config import BertConfig
from bert_tf.errors import InputError

logger = logging.getLogger("bert_tf")

CHECKPOINT_NAME = "bert_model.ckpt"
CONFIG_NAME = "bert_config.json"
# Written beside a fine-tuned checkpoint by run_classifier.py (read by the export tools).
VOCAB_NAME = "vocab.txt"
LABELS_NAME = "labels.txt"
# What a run_classifier.py run was trained on (its labels, multi_label and threshold).
RUN_INFO_NAME = "run_info.json"


class CheckpointError(InputError):
    """A checkpoint path is wrong, unreadable, or its weights file is missing."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's variables do not match the model (lists every difference)."""

    def __init__(self, message: str, report: "LoadReport"):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class LoadReport:
    """What a load did: loaded names, and every missing/unexpected/mismatched variable."""

    checkpoint: str
    loaded: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = dataclasses.field(default_factory=list)
    newly_initialized: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)
    skipped_training_state: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = []
        if self.missing:
            lines.append(f"missing from the checkpoint ({len(self.missing)}):")
            lines += [f"  {n}" for n in self.missing]
        if self.unexpected:
            lines.append(f"in the checkpoint but not in the model ({len(self.unexpected)}):")
            lines += [f"  {n}" for n in self.unexpected]
        if self.mismatched:
            lines.append(f"shape mismatch ({len(self.mismatched)}):")
            lines += [f"  {n}: checkpoint {list(c)} vs model {list(m)}"
                      for n, c, m in self.mismatched]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- paths
def resolve_checkpoint(path: str | os.PathLike) -> str:
    """Returns the checkpoint prefix for a prefix (`.../bert_model.ckpt`) or its directory."""
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        candidate = os.path.join(path, CHECKPOINT_NAME)
        if tf.io.gfile.exists(candidate + ".index"):
            return candidate
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        found = f"found {[os.path.basename(i) for i in indexes]}" if indexes else "found none"
        raise CheckpointError(f"no checkpoint in directory {path}: expected {CHECKPOINT_NAME}.index "
                              f"(or exactly one *.index file), {found}")
    if path.endswith(".index"):
        path = path[: -len(".index")]
    data_suffix = re.search(r"\.data-\d{5}-of-\d{5}$", path)
    if data_suffix:
        path = path[: data_suffix.start()]
    if not tf.io.gfile.exists(path + ".index"):
        raise CheckpointError(f"checkpoint not found: {path} (no {os.path.basename(path)}.index; "
                              f"pass the prefix such as .../{CHECKPOINT_NAME} or its directory)")
    return path


def read_run_info(init_checkpoint: str | os.PathLike) -> dict:
    """The run_info.json a fine-tuning run wrote beside its checkpoint (what it was trained on:
    task, labels, casing, max_seq_length, multi-label and SQuAD settings), or {} if there is
    none. Raises CheckpointError naming the file if it is not a JSON object."""
    path = os.path.join(os.path.dirname(resolve_checkpoint(init_checkpoint)), RUN_INFO_NAME)
    if not tf.io.gfile.exists(path):
        return {}
    try:
        with tf.io.gfile.GFile(path) as f:
            info = json.loads(f.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {RUN_INFO_NAME} {path}: {e}") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def config_for_checkpoint(prefix: str) -> BertConfig:
    """Reads the bert_config.json in the checkpoint's directory."""
    config_path = os.path.join(os.path.dirname(prefix), CONFIG_NAME)
    if not tf.io.gfile.exists(config_path):
        raise CheckpointError(f"no {CONFIG_NAME} next to checkpoint {prefix} (looked for "
                              f"{config_path}); pass the config explicitly")
    return BertConfig.from_json_file(config_path)


def _data_files(prefix: str) -> list[str]:
    return tf.io.gfile.glob(prefix + ".data-*")


# ----------------------------------------------------------------------------- loading
def _plan(entries: Sequence[Entry], shapes: dict[str, list[int]], prefix: str,
          optional_groups: Iterable[str]) -> LoadReport:
    report = LoadReport(checkpoint=prefix)
    optional = set(optional_groups)
    model_groups = {e.group for e in entries}
    by_name = {e.name: e for e in entries}
    for name in sorted(shapes):
        if is_training_state(name):
            report.skipped_training_state += 1
        elif name in by_name:
            entry = by_name[name]
            if tuple(shapes[name]) != entry.google_shape:
                report.mismatched.append((name, tuple(shapes[name]), entry.google_shape))
            else:
                report.loaded.append(name)
        elif group_of(name) in model_groups or group_of(name) == ENCODER:
            report.unexpected.append(name)
        else:
            report.unused.append(name)  # a head this model does not have (e.g. cls/ for an encoder)
    for entry in entries:
        if entry.name not in shapes:
            target = report.newly_initialized if entry.group in optional else report.missing
            target.append(entry.name)
    return report


def _hints(report: LoadReport, shapes: dict[str, list[int]], entries: Sequence[Entry]) -> str:
    hints = []
    if any(n.startswith(".") or "/.ATTRIBUTES/" in n for n in shapes):
        hints.append("this looks like a TF2 object-based checkpoint (tf.train.Checkpoint), not "
                     "Google's TF1 name-based format")
    tables = {"bert/embeddings/word_embeddings": "vocab_size",
              "bert/embeddings/token_type_embeddings": "type_vocab_size",
              "bert/embeddings/position_embeddings": "max_position_embeddings"}
    for name, ckpt, model in report.mismatched:
        # An embedding table is [rows, hidden_size]: blame the dimension that differs.
        if name in tables and ckpt[0] != model[0]:
            hints.append(f"{tables[name]}: checkpoint has {ckpt[0]}, the config says {model[0]}")
        if name == "bert/embeddings/word_embeddings" and ckpt[-1:] != model[-1:]:
            hints.append(f"hidden_size: checkpoint has {ckpt[-1]}, the config says {model[-1]}")
    layers = lambda names: {int(m.group(1)) for n in names  # noqa: E731
                            if (m := re.match(r"bert/encoder/layer_(\d+)/", n))}
    ckpt_layers, model_layers = layers(shapes), layers(e.name for e in entries)
    if ckpt_layers and len(ckpt_layers) != len(model_layers):
        hints.append(f"num_hidden_layers: checkpoint has {len(ckpt_layers)}, the config says "
                     f"{len(model_layers)}")
    if report.missing and all(group_of(n) != ENCODER for n in report.missing):
        hints.append("the checkpoint has no weights for the model's heads (an encoder-only "
                     "checkpoint?); strict=False initialises them randomly")
    return "".join(f"\nhint: {h}" for h in hints)


def load_google_checkpoint(model, path: str | os.PathLike, strict: bool = True,
                           optional_groups: Iterable[str] = ()) -> LoadReport:
    """Loads a Google TF1 BERT checkpoint into a BertEncoder, BertPretrainer or BertClassifier.

    Adam slots and `global_step` are skipped; heads the model lacks (e.g. `cls/*` when loading an
    encoder) are reported as `unused`. Heads in `optional_groups` (e.g. "classifier") may be
    absent and keep their initial values. With `strict=True` (default) any missing, unexpected
    or shape-mismatched variable raises one CheckpointMismatchError listing all of them;
    `strict=False` loads what matches and logs the rest. Returns a LoadReport.
    """
    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except tf.errors.OpError as e:
        raise CheckpointError(f"cannot read checkpoint index {prefix}.index: {e.message}") from None
    entries = google_name_table(model)
    report = _plan(entries, shapes, prefix, optional_groups)
    if not report.ok:
        message = (f"checkpoint {prefix} does not match the model:\n{report.describe()}"
                   f"{_hints(report, shapes, entries)}")
        if strict:
            raise CheckpointMismatchError(message, report)
        logger.warning("%s\nstrict=False: loading the %d matching variables.", message,
                       len(report.loaded))
    if report.loaded and not _data_files(prefix):
        raise CheckpointError(
            f"checkpoint {prefix}: the index lists {len(shapes)} variables "
            f"({len(report.loaded)} map onto the model) but the weights file "
            f"{os.path.basename(prefix)}.data-00000-of-00001 is missing")
    by_name = {e.name: e for e in entries}
    for name in report.loaded:
        variable = by_name[name].variable
        try:
            value = reader.get_tensor(name)
        except (IndexError, tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
            # tf's reader says "Read less bytes than requested" for a truncated data file.
            raise CheckpointError(
                f"checkpoint {prefix}: the weights file {', '.join(_data_files(prefix))} is "
                f"truncated or corrupted (reading {name}: {str(e).splitlines()[0]})") from None
        except tf.errors.OpError as e:
            raise CheckpointError(f"cannot read variable {name} from {prefix}: "
                                  f"{e.message.splitlines()[0]}") from None
        variable.assign(np.asarray(value).reshape(variable.shape).astype(variable.dtype))
    if report.newly_initialized:
        logger.info("%d variables not in %s keep their initial values: %s",
                    len(report.newly_initialized), prefix, ", ".join(report.newly_initialized))
    return report


def build_from_google_checkpoint(model_cls, path: str | os.PathLike,
                                 config: BertConfig | None = None, strict: bool = True,
                                 optional_groups: Iterable[str] = (), **model_kwargs):
    """Creates `model_cls(config, **model_kwargs)` (BertEncoder, BertPretrainer, BertClassifier,
    ...) and loads the checkpoint into it: the one-call way to load a Google checkpoint.

        >>> encoder = build_from_google_checkpoint(
        ...     BertEncoder, "uncased_L-12_H-768_A-12")  # doctest: +SKIP

    The config comes from bert_config.json beside the checkpoint unless given. For a
    BertClassifier, `num_classes` defaults to the checkpoint's `output_weights` rows (a fine-tuned
    checkpoint, whose head is loaded) or the lines of labels.txt beside it (a pretrained one:
    the head stays newly initialised).
    """
    from bert_tf.models.classifier import BertClassifier

    prefix = resolve_checkpoint(path)
    if config is None:
        config = config_for_checkpoint(prefix)
    if issubclass(model_cls, BertClassifier):
        optional_groups = tuple(optional_groups) + ("classifier",)
        if "num_classes" not in model_kwargs:
            model_kwargs["num_classes"] = infer_num_classes(prefix)
    model = model_cls(config, **model_kwargs)
    load_google_checkpoint(model, prefix, strict=strict, optional_groups=optional_groups)
    return model


def infer_num_classes(prefix: str) -> int:
    """The classifier head's size: `output_weights` rows, else the lines of labels.txt beside the
    checkpoint. Raises CheckpointError when neither exists."""
    try:
        shapes = dict(tf.train.list_variables(prefix))
    except tf.errors.OpError as e:
        raise CheckpointError(f"cannot read checkpoint index {prefix}.index: {e.message}") from None
    if "output_weights" in shapes:
        return int(shapes["output_weights"][0])
    labels = os.path.join(os.path.dirname(prefix), LABELS_NAME)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as f:
            count = sum(1 for line in f.read().split("\n") if line.strip())
        if count:
            return count
    raise CheckpointError(f"checkpoint {prefix} has no classifier head (output_weights) and no "
                          f"{LABELS_NAME} beside it: pass num_classes")


# ----------------------------------------------------------------------------- saving
def save_google_checkpoint(model, path: str | os.PathLike, config: BertConfig | None = None,
                           global_step: int | None = None) -> str:
    """Writes the model's weights with Google's names and shapes, plus bert_config.json.

    `path` is a checkpoint prefix (`.../bert_model.ckpt`) or a directory (the prefix is then
    `<dir>/bert_model.ckpt`). Values are written unchanged (bit-exact round trip); Google's
    code, `tf.train.list_variables` and other converters read the result. Returns the prefix.
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path) or path.endswith(("/", os.sep)):
        path = os.path.join(path, CHECKPOINT_NAME)
    directory = os.path.dirname(path) or "."
    tf.io.gfile.makedirs(directory)
    entries = google_name_table(model)
    names = [e.name for e in entries]
    tensors = [tf.constant(np.asarray(e.variable.numpy()).reshape(e.google_shape)) for e in entries]
    if global_step is not None:
        names.append("global_step")
        tensors.append(tf.constant(int(global_step), dtype=tf.int64))
    tf.raw_ops.SaveV2(prefix=path, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    config = config or getattr(model, "config", None)
    if config is not None:
        with tf.io.gfile.GFile(os.path.join(directory, CONFIG_NAME), "w") as f:
            f.write(config.to_json_string())
    return path
