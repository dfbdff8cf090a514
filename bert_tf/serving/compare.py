"""One exported classifier, four ways in: the SavedModel in-process, the model server over gRPC and
over REST, and the TFLite model — predictions side by side, with the largest disagreement.

    python -m bert_tf.cli.compare --saved_model_dir=serving/docs_topic/1 \
        --tflite_file=tflite/model.tflite --texts_file=sentences.txt [--text="..."] \
        [--model_name=docs_topic] [--tolerance=1e-4]

The server is `bert_tf.serving.server.ModelServer`, started on free ports for the comparison
and stopped after it; it serves the SavedModel's base directory (the version directory's
parent) and is asked for the version compared. One text per line of --texts_file (or per
--text); a `text_a ||| text_b` line goes through the pair signature. The table shows, per text
and path, the predicted label and its probability; below it, per path, the largest absolute
difference of any output probability from the in-process SavedModel's. The command fails
(exit status 1) when a path predicts another label than the SavedModel or differs by more than
--tolerance.

Library use:

    >>> from bert_tf.serving.compare import compare_paths
    >>> result = compare_paths("serving/docs_topic/1", ["Open a socket."],  # doctest: +SKIP
    ...                        tflite_file="model.tflite")
    >>> print(result.table())  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Mapping, Sequence

import numpy as np

from bert_tf.errors import InputError


SAVED_MODEL = "SavedModel"
GRPC = "gRPC"
REST = "REST"
TFLITE = "TFLite"

Predict = Callable[[str, dict[str, list[str]]], Mapping[str, np.ndarray]]


@dataclasses.dataclass
class Comparison:
    """Per text, each path's outputs (`outputs[path][i]`: that text's output arrays); `labels`
    / `probability` the predicted label and its probability; `max_abs_diff[path]` the largest
    absolute difference of the path's probabilities (or scores) from the first path's."""

    texts: list[str]
    outputs: dict[str, list[dict[str, np.ndarray]]]

    @property
    def paths(self) -> list[str]:
        return list(self.outputs)

    def label(self, path: str, i: int) -> str:
        out = self.outputs[path][i]
        if "embedding" in out:  # no label: compared by max_abs_diff alone
            return f"embedding[{np.size(out['embedding'])}]"
        if "label" in out:
            value = np.ravel(out["label"])[0]
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return f"{float(np.ravel(out['score'])[0]):.4f}"

    def probability(self, path: str, i: int) -> float | None:
        out = self.outputs[path][i]
        return float(np.max(out["probabilities"])) if "probabilities" in out else None

    @staticmethod
    def _values(out: Mapping[str, np.ndarray]) -> np.ndarray:
        key = next(k for k in ("probabilities", "embedding", "score") if k in out)
        return np.ravel(np.asarray(out[key], dtype=np.float64))

    @property
    def max_abs_diff(self) -> dict[str, float]:
        reference = self.paths[0]
        diffs = {}
        for path in self.paths[1:]:
            diffs[path] = max((float(np.max(np.abs(self._values(a) - self._values(b))))
                               for a, b in zip(self.outputs[reference], self.outputs[path])),
                              default=0.0)
        return diffs

    @property
    def label_mismatches(self) -> dict[str, int]:
        """Per path, the number of texts whose label differs from the first path's."""
        reference = self.paths[0]
        return {path: sum(self.label(path, i) != self.label(reference, i)
                          for i in range(len(self.texts))) for path in self.paths[1:]}

    def table(self, text_width: int = 56) -> str:
        """The comparison as a plain-text table plus the difference line."""
        def cell(path, i):
            p = self.probability(path, i)
            return self.label(path, i) if p is None else f"{self.label(path, i)} {p:.4f}"

        def short(text):
            return text if len(text) <= text_width else text[:text_width - 1] + "…"

        rows = [[short(t)] + [cell(path, i) for path in self.paths]
                for i, t in enumerate(self.texts)]
        header = ["text"] + [f"{path}: label p" for path in self.paths]
        widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]

        def line(cells):
            return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [line(header), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows]
        diffs = ", ".join(f"{path} {d:.2e}" for path, d in self.max_abs_diff.items())
        if diffs:
            out.append(f"max |difference| of the probabilities vs {self.paths[0]}: {diffs}")
        return "\n".join(out)


def saved_model_predict(saved_model_dir: str | os.PathLike) -> Predict:
    """predict(signature, inputs) on the SavedModel loaded in this process."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tf-text ops of the graph)

    loaded = tf.saved_model.load(os.fspath(saved_model_dir))

    def predict(signature, inputs):
        outputs = loaded.signatures[signature](
            **{k: tf.constant(v, tf.string) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    return predict


def tflite_predict(tflite_file: str | os.PathLike) -> Predict:
    """predict(signature, inputs) on a `.tflite` (`bert_tf.serving.tflite.Runner`)."""
    from bert_tf.serving.tflite import Runner

    runner = Runner(tflite_file)

    def predict(signature, inputs):
        del signature  # the Runner picks the pair signature when text_b is given
        return runner.predict(inputs["text"], inputs.get("text_b"))

    return predict


def _run(predict: Predict, lines: Sequence[str], batch_size: int
         ) -> list[dict[str, np.ndarray]]:
    from bert_tf.serving.client import predict_texts

    return [outputs for _, _, outputs in predict_texts(predict, lines, batch_size=batch_size)]


def _served_version(saved_model_dir: str) -> int | None:
    name = os.path.basename(os.path.normpath(saved_model_dir))
    return int(name) if name.isdigit() else None


def compare_paths(saved_model_dir: str | os.PathLike, texts: Sequence[str],
                  tflite_file: str | os.PathLike | None = None, model_name: str | None = None,
                  server: bool = True, batch_size: int = 32) -> Comparison:
    """Predicts `texts` through the SavedModel in-process, a `ModelServer` over gRPC and REST
    (unless `server=False`; started on free ports, stopped before returning) and the TFLite
    model (if `tflite_file`). `saved_model_dir` is a version directory
    `<model_base_path>/<version>`; `model_name` defaults to the base path's name."""
    from bert_tf.serving import client

    saved_model_dir = os.path.normpath(os.fspath(saved_model_dir))
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{saved_model_dir} has no saved_model.pb (expected a version "
                                "directory such as serving/<model_name>/1)")
    texts = list(texts)
    if not texts:
        raise InputError("no texts to compare")
    outputs = {SAVED_MODEL: _run(saved_model_predict(saved_model_dir), texts, batch_size)}
    if server:
        from bert_tf.serving.server import ModelServer

        base_path = os.path.dirname(saved_model_dir)
        name = model_name or os.path.basename(base_path)
        version = _served_version(saved_model_dir)
        with ModelServer(base_path, name) as srv:
            if version is not None and srv.version != version:
                raise InputError(f"the server serves version {srv.version} of {base_path}, "
                                 f"not {version} (it serves the newest version)")
            outputs[GRPC] = _run(
                lambda sig, inputs: client.predict_grpc(srv.grpc_address, name, inputs, sig,
                                                        version),
                texts, batch_size)
            outputs[REST] = _run(
                lambda sig, inputs: client.predict_rest(srv.rest_url, name, inputs, sig,
                                                        version),
                texts, batch_size)
    if tflite_file is not None:
        outputs[TFLITE] = _run(tflite_predict(tflite_file), texts, batch_size)
    return Comparison(texts, outputs)


def read_texts(path: str | os.PathLike) -> list[str]:
    """Non-empty lines of a UTF-8 file, without their line ends. Lines end at "\n" only (as in
    Google's readers): a lone "\r", form feed or U+2028 inside a text stays in it."""
    with open(path, encoding="utf-8", newline="") as f:
        return [line.rstrip("\r") for line in f.read().split("\n") if line.strip()]
