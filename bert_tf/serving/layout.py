"""TF Serving's model directory layout: `<model_base_path>/<version>/saved_model.pb`.

The one place that knows what a version directory is and how `saved_model.pb` is read; the
exporter (which picks the next version) and the development server (which serves the newest
one) both use it.
"""
from __future__ import annotations

import os
import re
from typing import Sequence

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from bert_tf.errors import InputError

SAVED_MODEL_FILE = "saved_model.pb"
_VERSION_RE = re.compile(r"^[0-9]+$")


def is_version_name(name: str) -> bool:
    """Whether a directory entry names a version (a plain decimal number)."""
    return bool(_VERSION_RE.match(name.rstrip("/")))


def versions(model_base_path: str | os.PathLike, with_saved_model: bool = False) -> list[int]:
    """The numeric version directories under `model_base_path`, ascending ([] if it is not a
    directory). `with_saved_model`: only those that hold a saved_model.pb (what TF Serving
    considers servable)."""
    base = os.fspath(model_base_path)
    if not tf.io.gfile.isdir(base):
        return []
    out = []
    for entry in tf.io.gfile.listdir(base):
        entry = entry.rstrip("/")
        if not is_version_name(entry):
            continue
        if with_saved_model and not tf.io.gfile.exists(
                os.path.join(base, entry, SAVED_MODEL_FILE)):
            continue
        out.append(int(entry))
    return sorted(out)


def read_saved_model(saved_model_dir: str | os.PathLike) -> saved_model_pb2.SavedModel:
    """The parsed `<saved_model_dir>/saved_model.pb`."""
    path = os.path.join(os.fspath(saved_model_dir), SAVED_MODEL_FILE)
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def read_signature_defs(saved_model_dir: str | os.PathLike,
                        tags: Sequence[str] = ("serve",)) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the MetaGraph with `tags` in `<saved_model_dir>/saved_model.pb`
    (what TF Serving's GetModelMetadata returns, `__saved_model_init_op` included)."""
    for meta_graph in read_saved_model(saved_model_dir).meta_graphs:
        if set(tags) <= set(meta_graph.meta_info_def.tags):
            return dict(meta_graph.signature_def)
    raise InputError(f"{saved_model_dir}: no MetaGraph with tags {list(tags)} in "
                     f"{SAVED_MODEL_FILE}")


def saved_model_custom_ops(saved_model_dir: str | os.PathLike) -> list[str]:
    """Ops in a SavedModel's graph that core TensorFlow lacks (here: tf-text's), i.e. what a
    TF Serving build must link to load it."""
    ops = set()
    for graph in read_saved_model(saved_model_dir).meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(op for op in ops if not hasattr(tf.raw_ops, op))


def directory_fingerprint(path: str | os.PathLike) -> tuple:
    """(relative path, size, mtime) of every file under `path`, sorted: changes whenever a file
    is added, grows or is rewritten, so a version directory that failed to load because it was
    still being copied is retried once the copy moves on."""
    root = os.fspath(path)
    entries = []
    for directory, _, files in tf.io.gfile.walk(root):
        for name in files:
            full = os.path.join(directory, name)
            try:
                stat = tf.io.gfile.stat(full)
            except tf.errors.OpError:  # removed while we walked: the next poll sees the change
                continue
            entries.append((os.path.relpath(full, root), stat.length, stat.mtime_nsec))
    return tuple(sorted(entries))
