"""One exported model, four ways in: the SavedModel in-process, the model server over gRPC and
over REST, and the TFLite model — predictions side by side, with the largest disagreement.

    python -m bert_tf.cli.compare --saved_model_dir=serving/docs_topic/1 \
        --tflite_file=tflite/model.tflite --texts_file=sentences.txt [--text="..."] \
        [--model_name=docs_topic] [--tolerance=1e-4]

The server is `bert_tf.serving.server.ModelServer`, started on free ports for the comparison
and stopped after it; it serves the SavedModel's base directory (the version directory's
parent) and is asked for the version compared. One text per line of --texts_file (or per
--text); a `text_a ||| text_b` line goes through the pair signature; a question-answering
model takes `question ||| context` lines.

What is compared depends on the model's kind (`KINDS`, found from its outputs): each kind has a
prediction that every path must give exactly and numbers that may differ by float rounding:

    kind                prediction (exact)                     numbers (≤ --tolerance)
    classifier          the label                              the probabilities
    regression          -                                      the score
    embedding           -                                      the embedding
    token_classifier    each entity's text, type, offsets      the entities' scores
    question_answering  the answer, its offsets (no-answer)    score (v2: null_score_diff)

The table shows, per text and path, the prediction (label and probability; the entities; the
answer); below it, per path, the largest absolute difference of those numbers from the
in-process SavedModel's. The command fails (exit status 1) when a path's prediction differs from
the SavedModel's or its numbers differ by more than --tolerance. Token classifiers and
question-answering models have no TFLite conversion: a TFLite file given for one is refused.

Library use:

    >>> from bert_tf.serving.compare import compare_paths
    >>> result = compare_paths("serving/docs_topic/1", ["Open a socket."],  # doctest: +SKIP
    ...                        tflite_file="model.tflite")
    >>> print(result.table())  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Hashable
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bert_tf.errors import InputError
from bert_tf.serving import client


SAVED_MODEL = "SavedModel"
GRPC = "gRPC"
REST = "REST"
TFLITE = "TFLite"

Predict = Callable[[str, dict[str, list[str]]], Mapping[str, np.ndarray]]
Outputs = Mapping[str, np.ndarray]


def _floats(*values) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values])


def _label(out: Outputs) -> str:
    value = np.ravel(out["label"])[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """How `Comparison` reads one kind of model's outputs for one text.

    Attributes:
      name: the kind (also the export task, except `regression`, a one-output classifier).
      task: the export task (`bert_tf.serving.export.SERVING_TASKS`), for the TFLite check.
      outputs: output names that identify the kind (all present).
      column: what a table cell shows.
      numbers: what `values` are, for the difference line.
      prediction: what every path must give exactly (hashable; None: nothing discrete).
      cell: the table cell.
      values: the numbers compared to the tolerance, float64 [N].
    """

    name: str
    task: str
    outputs: frozenset[str]
    column: str
    numbers: str
    prediction: Callable[[Outputs], Hashable]
    cell: Callable[[Outputs], str]
    values: Callable[[Outputs], np.ndarray]


def _answer_prediction(out: Outputs) -> Hashable:
    found = client.answer(out)
    return found.text, found.start, found.end, found.is_impossible


def _answer_values(out: Outputs) -> np.ndarray:
    found = client.answer(out)
    return _floats(found.score, [] if found.null_score_diff is None else found.null_score_diff)


# First match wins: the question-answering and token-classifier outputs include a `score`.
KINDS = (
    ModelKind("question_answering", "question_answering",
              frozenset(("answer", "start", "end", "score")), "answer",
              "scores (score, null_score_diff)", _answer_prediction,
              lambda out: client.format_answer(client.answer(out)), _answer_values),
    ModelKind("token_classifier", "token_classifier",
              frozenset(("entity_text", "entity_type", "num_entities", "score")), "entities",
              "entity scores",
              lambda out: tuple((t, y, a, b) for t, y, _, a, b in client.entities(out)),
              lambda out: client.format_entities(client.entities(out)),
              lambda out: _floats([e[2] for e in client.entities(out)])),
    ModelKind("classifier", "classifier", frozenset(("label", "probabilities")), "label p",
              "probabilities", _label,
              lambda out: f"{_label(out)} {float(np.max(out['probabilities'])):.4f}",
              lambda out: _floats(out["probabilities"])),
    ModelKind("embedding", "embedding", frozenset(("embedding",)), "embedding", "embedding",
              lambda out: None, lambda out: f"embedding[{np.size(out['embedding'])}]",
              lambda out: _floats(out["embedding"])),
    ModelKind("regression", "classifier", frozenset(("score",)), "score", "scores",
              lambda out: None, lambda out: f"{float(np.ravel(out['score'])[0]):.4f}",
              lambda out: _floats(out["score"])),
)


def kind_of(output_names: Any) -> ModelKind:
    """The `ModelKind` of a model with these outputs (names, or a dict keyed by them)."""
    names = set(output_names)
    for kind in KINDS:
        if kind.outputs <= names:
            return kind
    raise InputError(f"compare handles {', '.join(k.name for k in KINDS)} exports; this "
                     f"signature's outputs are {', '.join(sorted(names))}")


@dataclasses.dataclass
class Comparison:
    """Per text, each path's outputs (`outputs[path][i]`: that text's output arrays), read by
    the model's `kind`: `label_mismatches` counts the texts whose prediction differs from the
    first path's, `max_abs_diff` the largest absolute difference of the numbers."""

    texts: list[str]
    outputs: dict[str, list[dict[str, np.ndarray]]]

    @property
    def paths(self) -> list[str]:
        return list(self.outputs)

    @property
    def kind(self) -> ModelKind:
        return kind_of(self.outputs[self.paths[0]][0])

    def cell(self, path: str, i: int) -> str:
        """What the table shows for text `i` on `path`."""
        return self.kind.cell(self.outputs[path][i])

    @property
    def max_abs_diff(self) -> dict[str, float]:
        """Per path, the largest |difference| of its numbers from the first path's (texts whose
        numbers have another shape, e.g. another entity count, are counted as mismatches)."""
        values = self.kind.values
        reference = self.outputs[self.paths[0]]
        diffs = {}
        for path in self.paths[1:]:
            pairs = [(values(a), values(b)) for a, b in zip(reference, self.outputs[path])]
            diffs[path] = max((float(np.max(np.abs(a - b), initial=0.0))
                               for a, b in pairs if a.shape == b.shape), default=0.0)
        return diffs

    @property
    def label_mismatches(self) -> dict[str, int]:
        """Per path, the number of texts whose prediction (the label; the entities; the answer
        and its offsets) differs from the first path's."""
        prediction = self.kind.prediction
        reference = self.outputs[self.paths[0]]
        return {path: sum(prediction(a) != prediction(b)
                          for a, b in zip(reference, self.outputs[path]))
                for path in self.paths[1:]}

    def disagreements(self, tolerance: float) -> list[str]:
        """Why the paths disagree with the first one, one line per reason (none: they agree):
        texts predicted otherwise, then numbers that differ by more than `tolerance`."""
        bad = [f"{path}: {n} of {len(self.texts)} texts predicted otherwise"
               for path, n in self.label_mismatches.items() if n]
        return bad + [f"{path}: max |difference| {d:.2e} > tolerance {tolerance:g}"
                      for path, d in self.max_abs_diff.items() if d > tolerance]

    def table(self, text_width: int = 56, cell_width: int = 72) -> str:
        """The comparison as a plain-text table plus the difference line."""
        def short(text, width):
            return text if len(text) <= width else text[:width - 1] + "…"

        rows = [[short(t, text_width)] + [short(self.cell(path, i), cell_width)
                                          for path in self.paths]
                for i, t in enumerate(self.texts)]
        header = ["text"] + [f"{path}: {self.kind.column}" for path in self.paths]
        widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]

        def line(cells):
            return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [line(header), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows]
        diffs = ", ".join(f"{path} {d:.2e}" for path, d in self.max_abs_diff.items())
        if diffs:
            out.append(f"max |difference| of the {self.kind.numbers} vs {self.paths[0]}: "
                       f"{diffs}")
        return "\n".join(out)


def load_saved_model(saved_model_dir: str | os.PathLike):
    """`tf.saved_model.load` with the tf-text ops registered."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tf-text ops of the graph)

    return tf.saved_model.load(os.fspath(saved_model_dir))


def saved_model_predict(loaded) -> Predict:
    """predict(signature, inputs) on a SavedModel loaded in this process (`load_saved_model`)."""
    import tensorflow as tf

    def predict(signature, inputs):
        outputs = loaded.signatures[signature](
            **{k: tf.constant(v, tf.string) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    return predict


def signature_io(saved_model_dir: str | os.PathLike, signature: str = client.DEFAULT_SIGNATURE
                 ) -> tuple[list[str], list[str]]:
    """(input names, output names) of a SavedModel's signature, sorted, read from its
    saved_model.pb (without loading the graph)."""
    from bert_tf.serving.layout import read_signature_defs

    signatures = read_signature_defs(saved_model_dir)
    if signature not in signatures:
        raise InputError(f"{os.fspath(saved_model_dir)} has no signature {signature!r} (it has "
                         f"{', '.join(sorted(signatures))})")
    return sorted(signatures[signature].inputs), sorted(signatures[signature].outputs)


def tflite_predict(tflite_file: str | os.PathLike) -> Predict:
    """predict(signature, inputs) on a `.tflite` (`bert_tf.serving.tflite.Runner`)."""
    from bert_tf.serving.tflite import Runner

    runner = Runner(tflite_file)

    def predict(signature, inputs):
        del signature  # the Runner picks the pair signature when text_b is given
        return runner.predict(inputs["text"], inputs.get("text_b"))

    return predict


def check_tflite(kind: ModelKind, tflite_file: str | os.PathLike) -> None:
    """Raises InputError when a TFLite file is given for a kind of model that has none."""
    from bert_tf.serving.tflite import TFLITE_TASKS

    if kind.task not in TFLITE_TASKS:
        raise InputError(
            f"--tflite_file={os.fspath(tflite_file)}: a {kind.task} model has no TFLite "
            f"conversion (export/export_tflite.py converts {', '.join(TFLITE_TASKS)} models: "
            "the entity and answer graphs need tf-text's offset-returning tokenizer ops and "
            "string and ragged ops that TFLite has no kernels for, see "
            "docs/token_classification.md); compare it without --tflite_file")


def _run(predict: Predict, lines: Sequence[str], batch_size: int,
         input_names: Sequence[str]) -> list[dict[str, np.ndarray]]:
    return [outputs for _, _, outputs in client.predict_texts(
        predict, lines, batch_size=batch_size, input_names=input_names)]


def _served_version(saved_model_dir: str) -> int | None:
    name = os.path.basename(os.path.normpath(saved_model_dir))
    return int(name) if name.isdigit() else None


def compare_paths(saved_model_dir: str | os.PathLike, texts: Sequence[str],
                  tflite_file: str | os.PathLike | None = None, model_name: str | None = None,
                  server: bool = True, batch_size: int = 32) -> Comparison:
    """Predicts `texts` through the SavedModel in-process, a `ModelServer` over gRPC and REST
    (unless `server=False`; started on free ports, stopped before returning) and the TFLite
    model (if `tflite_file`). `saved_model_dir` is a version directory
    `<model_base_path>/<version>`; `model_name` defaults to the base path's name. A
    question-answering model's texts are `question ||| context` lines."""
    saved_model_dir = os.path.normpath(os.fspath(saved_model_dir))
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{saved_model_dir} has no saved_model.pb (expected a version "
                                "directory such as serving/<model_name>/1)")
    texts = list(texts)
    if not texts:
        raise InputError("no texts to compare")
    input_names, output_names = signature_io(saved_model_dir)
    kind = kind_of(output_names)
    if tflite_file is not None:
        check_tflite(kind, tflite_file)
    loaded = load_saved_model(saved_model_dir)
    outputs = {SAVED_MODEL: _run(saved_model_predict(loaded), texts, batch_size, input_names)}
    if server:
        outputs.update(_served_outputs(saved_model_dir, texts, model_name, batch_size,
                                       input_names))
    if tflite_file is not None:
        outputs[TFLITE] = _run(tflite_predict(tflite_file), texts, batch_size, input_names)
    return Comparison(texts, outputs)


def _served_outputs(saved_model_dir: str, texts: list[str], model_name: str | None,
                    batch_size: int, input_names: Sequence[str]) -> dict[str, list]:
    """The gRPC and REST paths through a ModelServer of the SavedModel's base path."""
    from bert_tf.serving.server import ModelServer

    base_path = os.path.dirname(saved_model_dir)
    name = model_name or os.path.basename(base_path)
    version = _served_version(saved_model_dir)
    with ModelServer(base_path, name) as srv:
        if version is not None and srv.version != version:
            raise InputError(f"the server serves version {srv.version} of {base_path}, "
                             f"not {version} (it serves the newest version)")
        return {
            GRPC: _run(lambda sig, inputs: client.predict_grpc(srv.grpc_address, name, inputs,
                                                               sig, version),
                       texts, batch_size, input_names),
            REST: _run(lambda sig, inputs: client.predict_rest(srv.rest_url, name, inputs, sig,
                                                               version),
                       texts, batch_size, input_names)}


def read_texts(path: str | os.PathLike) -> list[str]:
    """Non-empty lines of a UTF-8 file, without their line ends. Lines end at "\n" only (as in
    Google's readers): a lone "\r", form feed or U+2028 inside a text stays in it."""
    with open(path, encoding="utf-8", newline="") as f:
        return [line.rstrip("\r") for line in f.read().split("\n") if line.strip()]
