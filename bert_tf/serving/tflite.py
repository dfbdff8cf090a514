"""TFLite export: a classifier or encoder with tokenization inside, for Android/iOS.

The `.tflite` model takes the raw text, like the SavedModel (`bert_tf.serving.modules`), and
runs tf-text's TFLite kernels for normalization and WordPiece (custom ops) plus builtin ops for
everything else (docs/architecture.md#tflite). Signatures, with string inputs of shape [1] (TFLite runs string
input at batch 1):

- `serving_default(text)` and `text_pair(text, text_b)`;
- classifier → `probabilities`, `logits` (float32 [1, C]) and `label` (string [1]); a regression
  model → `score` (float32 [1]);
- encoder → `pooled_output` [1, H], `sequence_output` [1, S, H], `encoder_outputs` [1, L, S, H];
- embedding → `embedding` [1, D].

Tokenization differs from the SavedModel's in one known case: a capital Σ that ends a word
lower-cases to σ, not ς (the final-sigma rule needs a regular expression, Flex-only in TFLite).
The graph is float32 whatever the export's `dtype_policy` (a `mixed_bfloat16` or `bfloat16`
model is rebuilt in float32 with its weights); `quantize` picks the weights' storage:
`none`, `float16` (half the weight bytes, float32 compute) or `dynamic_int8` (int8 weights,
dynamic-range quantized matmuls, a quarter of the weight bytes).

`export_tflite` writes `<name>.tflite` and a JSON sidecar `<name>.json` describing it (task,
signatures, labels, preprocessing, quantization, the custom ops to link). `Runner` runs a
`.tflite` in Python with tf-text's op registrar.

Example:
    >>> from bert_tf.serving.export import load_exported
    >>> from bert_tf.serving.tflite import Runner, export_tflite
    >>> spec, model = load_exported("serving/mrpc/1")  # doctest: +SKIP
    >>> export_tflite(spec, model, "mrpc.tflite", quantize="dynamic_int8")  # doctest: +SKIP
    >>> Runner("mrpc.tflite").predict(["a sentence"], ["another"])["label"]  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import threading
import warnings
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.serving.export import ExportError, ExportSpec
from bert_tf.serving.modules import ServingModule

TFLITE_TASKS = ("classifier", "encoder", "embedding")
QUANTIZE_MODES = ("none", "float16", "dynamic_int8")
_TEXT = tf.TensorSpec([1], tf.string, name="text")
_TEXT_B = tf.TensorSpec([1], tf.string, name="text_b")
_CUSTOM = 32  # BuiltinOperator.CUSTOM in the TFLite schema
_DEPRECATION = r".*tf\.lite\.Interpreter is deprecated"


class TFLiteError(ExportError):
    """A model or argument that cannot be converted to / run as TFLite."""


def check_task(task: str) -> None:
    if task not in TFLITE_TASKS:
        raise TFLiteError(
            f"task {task!r} cannot be exported to TFLite: only {', '.join(TFLITE_TASKS)} are "
            "supported (masked_lm's [MASK] splitting needs StringSplitV2, RaggedGather and "
            "other ops that have no TFLite kernel; serve it as a SavedModel)")


def check_quantize(quantize: str) -> None:
    if quantize not in QUANTIZE_MODES:
        raise TFLiteError(f"unknown quantize {quantize!r}: expected one of "
                          f"{', '.join(QUANTIZE_MODES)}")


def sidecar_path(tflite_path: str | os.PathLike) -> str:
    """`<name>.json` beside `<name>.tflite`."""
    return os.path.splitext(os.fspath(tflite_path))[0] + ".json"


# ----------------------------------------------------------------------------- the module
class TFLiteModule(tf.Module):
    """The task's serving outputs behind batch-1 string signatures that convert with builtins
    plus tf-text custom ops. Wraps `spec.serving_module(model, <tflite preprocessor>)`."""

    def __init__(self, spec: ExportSpec, model, name: str | None = None):
        super().__init__(name=name)
        check_task(spec.task)
        self.serving: ServingModule = spec.serving_module(
            model, spec.preprocessor(tflite_compatible=True))

    def _outputs(self, segments: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        pre = self.serving.preprocessor
        inputs = pre.bert_pack_inputs([pre.tokenize(s) for s in segments])
        return self.serving._outputs(inputs)

    @tf.function(input_signature=[_TEXT])
    def serve_text(self, text):
        return self._outputs([text])

    @tf.function(input_signature=[_TEXT, _TEXT_B])
    def serve_text_pair(self, text, text_b):
        return self._outputs([text, text_b])

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {"serving_default": self.serve_text.get_concrete_function(),
                "text_pair": self.serve_text_pair.get_concrete_function()}


def _float32_model(spec: ExportSpec, model):
    """(spec, model) with a float32 graph: a model of another policy (`mixed_bfloat16`,
    `bfloat16`) is rebuilt in float32 with its weights cast to float32."""
    if spec.dtype_policy == "float32":
        return spec, model
    spec = dataclasses.replace(spec, dtype_policy="float32")
    rebuilt = spec.build_model()
    if len(rebuilt.variables) != len(model.variables):
        raise TFLiteError(f"cannot rebuild the {spec.task} in float32: "
                          f"{len(model.variables)} variables, expected {len(rebuilt.variables)}")
    for target, value in zip(rebuilt.variables, model.variables):
        target.assign(tf.cast(value, target.dtype))
    return spec, rebuilt


# ----------------------------------------------------------------------------- conversion
def convert(spec: ExportSpec, model, quantize: str = "none") -> bytes:
    """The TFLite flatbuffer of `model` (built by `spec.build_model`, trained weights loaded)
    with the `serving_default` and `text_pair` signatures (see the module docstring).

    Builtin ops plus tf-text custom ops only (no Flex: SELECT_TF_OPS would turn ops into Flex
    ops that no interpreter here runs). The result is checked with `verify_model`. Raises
    TFLiteError for masked_lm, an unknown `quantize`, or a converted model that does not run
    with tf-text's ops (e.g. a custom op that tf-text's registrar does not provide).
    """
    check_task(spec.task)
    check_quantize(quantize)
    import tensorflow_text  # noqa: F401  (registers the tf-text TF ops the graph is traced with)

    spec, model = _float32_model(spec, model)
    module = TFLiteModule(spec, model)
    signatures = module.signatures()
    with tempfile.TemporaryDirectory(prefix="bert_tf_tflite_") as tmp:
        # Through a SavedModel so the signatures keep their names (from_concrete_functions
        # names several functions after their graphs). The root tracks only what the functions
        # capture, the variables: saving the Keras model's object graph too takes ~10x longer.
        root = tf.Module()
        root.tf_vars = list(module.serving.tf_vars)
        tf.saved_model.save(root, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = True
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        data = converter.convert()
    verify_model(data)
    return data


def custom_ops(model_content: bytes) -> list[str]:
    """The custom ops a TFLite flatbuffer uses (their registered names), sorted, read from the
    model's operator codes."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(model_content, 0)
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _CUSTOM:
            names.add(code.CustomCode().decode("utf-8"))
    return sorted(names)


def verify_model(model_content: bytes) -> None:
    """Loads a converted model with tf-text's ops and runs each signature once on empty
    strings. Raises TFLiteError if an op does not resolve (e.g. a TF op the converter kept as a
    custom op, which would otherwise only fail on the device) or the model fails to run."""
    try:
        interpreter = make_interpreter(model_content)
        interpreter.allocate_tensors()  # the main subgraph (a model may have no signatures)
        for name in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(name)
            runner(**{key: np.array([b""] * max(1, int(np.prod(d["shape"]))), dtype=object)
                      for key, d in runner.get_input_details().items()})
    except (RuntimeError, ValueError) as e:
        ops = custom_ops(model_content)
        if "unresolved custom op" in str(e):
            raise TFLiteError(f"the converted model uses custom ops {ops} that tf-text's TFLite "
                              f"registrar does not all provide: {e}") from None
        raise TFLiteError(f"the converted model fails to run: {e}") from None


def make_interpreter(model_content: bytes | None = None, model_path: str | None = None,
                     num_threads: int | None = None):
    """A TFLite interpreter (`tf.lite`'s, with its deprecation warning silenced) that has
    tf-text's custom ops registered; not thread-safe (see `Runner`)."""
    import tensorflow_text as tf_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=UserWarning)
        return InterpreterWithCustomOps(
            model_content=model_content, model_path=model_path, num_threads=num_threads,
            custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS)


def _dtype_name(dtype) -> str:
    dtype = np.dtype(dtype)
    return "string" if dtype.kind in "SUO" else dtype.name


def describe_signatures(interpreter) -> dict[str, Any]:
    """{signature: {inputs/outputs: {name: {dtype, shape}}}} as the interpreter reports them
    (-1 is a dimension fixed only at run time)."""
    def spec(details):
        return {"dtype": _dtype_name(details["dtype"]),
                "shape": [int(d) for d in details["shape_signature"]]}

    out = {}
    for name in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(name)
        out[name] = {"inputs": {k: spec(v) for k, v in
                                sorted(runner.get_input_details().items())},
                     "outputs": {k: spec(v) for k, v in
                                 sorted(runner.get_output_details().items())}}
    return out


def export_tflite(spec: ExportSpec, model, output_path: str | os.PathLike,
                  quantize: str = "none", overwrite: bool = False) -> dict[str, Any]:
    """Converts (see `convert`) and writes `output_path` (`<name>.tflite`) and its sidecar
    `<name>.json`; returns the sidecar's content plus `path` and `sidecar`.

    Raises TFLiteError if a file exists and `overwrite` is false. Both files are written to
    temporary names and renamed into place.
    """
    output_path = os.fspath(output_path)
    check_task(spec.task)
    check_quantize(quantize)
    meta_path = check_output_path(output_path, overwrite)
    data = convert(spec, model, quantize)
    meta = {
        "task": spec.task,
        "tflite_file": os.path.basename(output_path),
        "size_bytes": len(data),
        "quantize": quantize,
        "signatures": describe_signatures(make_interpreter(data)),
        "custom_ops": custom_ops(data),
        "vocab_size": len(spec.vocab),
        "max_seq_length": spec.max_seq_length,
        "do_lower_case": spec.do_lower_case,
        "labels": list(spec.labels) if spec.task == "classifier" else [],
        "bert_config": spec.bert_config.to_dict(),
        "tensorflow_version": tf.__version__,
        "tensorflow_text_version": _tf_text_version(),
    }
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    _write_atomic(output_path, data)
    _write_atomic(meta_path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return dict(meta, path=output_path, sidecar=meta_path)


def check_output_path(output_path: str | os.PathLike, overwrite: bool = False) -> str:
    """Validates where `export_tflite` writes; returns the sidecar's path."""
    output_path = os.fspath(output_path)
    meta_path = sidecar_path(output_path)
    if not output_path or os.path.basename(output_path) in ("", ".", ".."):
        raise TFLiteError(f"output file {output_path!r} is not a file name")
    if meta_path == output_path:
        raise TFLiteError(f"output file {output_path} would be overwritten by its JSON sidecar: "
                          "name it <name>.tflite")
    if os.path.isdir(output_path):
        raise TFLiteError(f"output file {output_path} is a directory")
    if not overwrite:
        for path in (output_path, meta_path):
            if os.path.exists(path):
                raise TFLiteError(f"{path} already exists: pass --overwrite to replace it")
    return meta_path


def _write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _tf_text_version() -> str:
    import tensorflow_text

    return getattr(tensorflow_text, "__version__", "unknown")


# ----------------------------------------------------------------------------- running
class Runner:
    """Runs a `.tflite` from `export_tflite` in Python, with tf-text's custom-op registrar.

    `predict(texts, texts_b=None)` runs each text (or pair) at batch 1, the only batch size
    the string input takes, and stacks the outputs on axis 0: a dict of NumPy arrays named as
    the model's outputs; a classifier's `label` holds the label names as `str` (the model's
    string output, decoded).

    Thread safety: a TFLite interpreter is not thread-safe; `predict` holds a lock, so
    concurrent calls on one Runner are safe but run one at a time. For parallel inference
    create one Runner per thread.

    Args:
        tflite_path: the `.tflite` file; its `<name>.json` sidecar is read if present
            (`self.metadata`, else {}).
        num_threads: the interpreter's CPU threads (None: TFLite's default).
    """

    def __init__(self, tflite_path: str | os.PathLike, num_threads: int | None = None):
        self.path = os.fspath(tflite_path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"TFLite model {self.path} does not exist")
        self.metadata: dict[str, Any] = {}
        if os.path.isfile(sidecar_path(self.path)):
            with open(sidecar_path(self.path), encoding="utf-8") as f:
                self.metadata = json.load(f)
        self._interpreter = make_interpreter(model_path=self.path, num_threads=num_threads)
        self.signatures = dict(self._interpreter.get_signature_list())
        self._runners = {name: self._interpreter.get_signature_runner(name)
                         for name in self.signatures}
        self._outputs = {name: runner.get_output_details()
                         for name, runner in self._runners.items()}
        self._lock = threading.Lock()

    @property
    def task(self) -> str | None:
        """The sidecar's task (None without a sidecar)."""
        return self.metadata.get("task")

    @property
    def labels(self) -> list[str]:
        """The sidecar's label names in id order ([] without a sidecar or for a regression)."""
        return list(self.metadata.get("labels") or [])

    def predict(self, texts: Sequence[str], texts_b: Sequence[str] | None = None
                ) -> dict[str, np.ndarray]:
        """Outputs for `texts` (or the pairs `texts`, `texts_b`), stacked over the texts."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("predict takes a list of texts, not a single string")
        texts = list(texts)
        if texts_b is None:
            name = "serving_default"
            feeds = [{"text": [t]} for t in texts]
        else:
            if isinstance(texts_b, (str, bytes)):
                raise TypeError("texts_b must be a list of texts, not a single string")
            texts_b = list(texts_b)
            if len(texts_b) != len(texts):
                raise ValueError(f"texts and texts_b must have the same length, got "
                                 f"{len(texts)} and {len(texts_b)}")
            name = "text_pair"
            if name not in self._runners:
                raise ValueError(f"{self.path} has no text_pair signature (signatures: "
                                 f"{sorted(self.signatures)}): it takes single texts only")
            feeds = [{"text": [a], "text_b": [b]} for a, b in zip(texts, texts_b)]
        runner = self._runners[name]
        rows = []
        with self._lock:
            for feed in feeds:
                out = runner(**{k: np.array([_as_bytes(x) for x in v], dtype=object)
                                for k, v in feed.items()})
                rows.append({k: np.array(v, copy=True) for k, v in out.items()})
        result = {}
        for key, details in self._outputs[name].items():
            if rows:
                result[key] = np.concatenate([r[key] for r in rows], axis=0)
            else:
                shape = [0] + [max(int(d), 0) for d in details["shape_signature"][1:]]
                result[key] = np.zeros(shape, dtype=details["dtype"])
        if "label" in result:
            result["label"] = np.array([_as_str(x) for x in result["label"]], dtype=object)
        return result


def _as_bytes(text) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8")
    raise TypeError(f"texts must be str or bytes, got {type(text).__name__}")


def _as_str(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


__all__ = ["QUANTIZE_MODES", "Runner", "TFLITE_TASKS", "TFLiteError", "TFLiteModule",
           "check_output_path", "check_quantize", "check_task", "convert", "custom_ops",
           "describe_signatures", "export_tflite", "make_interpreter", "sidecar_path",
           "verify_model"]
