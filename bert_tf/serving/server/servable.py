"""One loaded version of a SavedModel: signature lookup, TF Serving's request checks, inference.

Requests are checked before any work proportional to what they *declare*: a TensorProto whose
shape does not match the values it carries is rejected (TF would repeat the last value to fill
the shape, so 30 bytes could become a million strings), and the batch cap is applied to the
declared 0th dimension before a tensor is built.
"""
from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tf-text ops the exported graphs use)
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from bert_tf.serving import layout
from bert_tf.serving.server.status import (DEFAULT_SIGNATURE, GRPC_CODE_BY_VALUE,
                                           ServingStatusError, check_batch_size, dtype_string,
                                           invalid)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_MAX_WARMUP_RECORDS = 1000  # TF Serving's limit

# The repeated field that carries a TensorProto's values when tensor_content is empty, and how
# many of its entries make one element (complex numbers take two).
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: ("float_val", 1), types_pb2.DT_DOUBLE: ("double_val", 1),
    types_pb2.DT_INT32: ("int_val", 1), types_pb2.DT_INT16: ("int_val", 1),
    types_pb2.DT_INT8: ("int_val", 1), types_pb2.DT_UINT8: ("int_val", 1),
    types_pb2.DT_UINT16: ("int_val", 1), types_pb2.DT_INT64: ("int64_val", 1),
    types_pb2.DT_UINT32: ("uint32_val", 1), types_pb2.DT_UINT64: ("uint64_val", 1),
    types_pb2.DT_BOOL: ("bool_val", 1), types_pb2.DT_STRING: ("string_val", 1),
    types_pb2.DT_HALF: ("half_val", 1), types_pb2.DT_BFLOAT16: ("half_val", 1),
    types_pb2.DT_COMPLEX64: ("scomplex_val", 2), types_pb2.DT_COMPLEX128: ("dcomplex_val", 2),
}


def declared_shape(name: str, proto: tensor_pb2.TensorProto) -> list[int]:
    """The shape a request's TensorProto declares, checked against the values it carries
    (INVALID_ARGUMENT when they disagree), without expanding anything."""
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"input tensor {name}: its shape has unknown rank")
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in shape):
        raise invalid(f"input tensor {name}: shape {shape} has a negative dimension")
    count = math.prod(shape)
    field = _VALUE_FIELDS.get(proto.dtype)
    if field is None:
        raise invalid(f"input tensor {name}: unsupported dtype "
                      f"{types_pb2.DataType.Name(proto.dtype)}")
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise invalid(f"input tensor {name}: a string tensor cannot use tensor_content")
        itemsize = tf.as_dtype(proto.dtype).size
        held, what = len(proto.tensor_content), f"{count * itemsize} bytes of tensor_content"
        expected = count * itemsize
    else:
        values, per_element = field
        held, expected = len(getattr(proto, values)), count * per_element
        what = f"{expected} {values} values"
    if held != expected:
        raise invalid(f"input tensor {name}: shape [{','.join(map(str, shape))}] needs {what} "
                      f"but the request carries {held}")
    return shape


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "[?]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape.as_list()) + "]"


class Servable:
    """One loaded version of a SavedModel: signature lookup, request checks and inference.

    `max_batch_size` caps the 0th dimension of every input (None or 0: no cap)."""

    def __init__(self, name: str, version: int, path: str, max_batch_size: int | None = None):
        self.name = name
        self.version = version
        self.path = path
        self.max_batch_size = max_batch_size
        self.signature_defs = layout.read_signature_defs(path)
        self._loaded = tf.saved_model.load(path, tags=["serve"])
        self._functions = dict(self._loaded.signatures)

    def signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef `signature_name` (empty: serving_default); FAILED_PRECONDITION
        otherwise, as TF Serving's Predict."""
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in self._functions or signature_name not in self.signature_defs:
            raise ServingStatusError(grpc.StatusCode.FAILED_PRECONDITION,
                                     f'Serving signature key "{signature_name}" not found.')
        return self.signature_defs[signature_name]

    def predict(self, signature_name: str,
                inputs: Mapping[str, tf.Tensor | tensor_pb2.TensorProto],
                output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Runs signature `signature_name` on `inputs` (tensors or TensorProtos), checking them
        as TF Serving does; returns the (filtered) outputs as NumPy arrays."""
        feeds, outputs = self.prepare(signature_name, inputs, output_filter)
        return self.run(signature_name, feeds, outputs)

    def prepare(self, signature_name: str,
                inputs: Mapping[str, tf.Tensor | tensor_pb2.TensorProto],
                output_filter: Sequence[str] = ()) -> tuple[dict[str, tf.Tensor], list[str]]:
        """Checks a request and converts its inputs: (feeds for `run`, output names)."""
        sig = self.signature(signature_name)
        self._check_aliases(sig, inputs)
        outputs = self._check_outputs(sig, output_filter)
        shapes = {name: (declared_shape(name, value)
                         if isinstance(value, tensor_pb2.TensorProto) else value.shape.as_list())
                  for name, value in inputs.items()}
        self._check_batch(signature_name or DEFAULT_SIGNATURE, shapes)
        feeds = {}
        for index, name in enumerate(sorted(sig.inputs)):
            feeds[name] = self._feed(index, name, sig.inputs[name], inputs[name])
        return feeds, outputs

    def run(self, signature_name: str, feeds: Mapping[str, tf.Tensor],
            outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Runs the signature on checked `feeds`; returns `outputs` as NumPy arrays."""
        try:
            result = self._functions[signature_name or DEFAULT_SIGNATURE](**feeds)
        except tf.errors.OpError as e:
            raise ServingStatusError(GRPC_CODE_BY_VALUE.get(e.error_code,
                                                            grpc.StatusCode.UNKNOWN),
                                     e.message) from e
        except (TypeError, ValueError) as e:  # argument conversion in the concrete function
            raise invalid(str(e)) from e
        return {name: result[name].numpy() for name in outputs}

    @staticmethod
    def _check_aliases(sig: meta_graph_pb2.SignatureDef, inputs: Mapping) -> None:
        expected, sent = set(sig.inputs), set(inputs)
        if len(sent) == len(expected) and sent != expected:
            raise invalid(f"input tensor alias not found in signature: {min(sent - expected)}. "
                          f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
        if sent != expected:
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")

    @staticmethod
    def _check_outputs(sig: meta_graph_pb2.SignatureDef,
                       output_filter: Sequence[str]) -> list[str]:
        outputs = list(output_filter)
        for alias in outputs:
            if alias not in sig.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs "
                              f"expected to be in the set {{{','.join(sorted(sig.outputs))}}}.")
        if len(set(outputs)) != len(outputs):
            dup = next(a for a in outputs if outputs.count(a) > 1)
            raise invalid(f"duplicate output tensor alias: {dup}")
        return outputs or sorted(sig.outputs)

    @staticmethod
    def _feed(index: int, name: str, info: meta_graph_pb2.TensorInfo, value) -> tf.Tensor:
        if isinstance(value, tensor_pb2.TensorProto):
            try:
                value = tf.constant(tf.make_ndarray(value), dtype=tf.as_dtype(value.dtype))
            except Exception as e:  # malformed TensorProto
                raise invalid(f"tensor parsing error: {name} ({e})") from e
        want = tf.as_dtype(info.dtype)
        if value.dtype != want:
            raise invalid(f"Expects arg[{index}] to be {dtype_string(want)} but "
                          f"{dtype_string(value.dtype)} is provided")
        want_shape = tf.TensorShape(info.tensor_shape)
        if not want_shape.is_compatible_with(value.shape):
            raise invalid(f"Input {name!r}: shape {value.shape.as_list()} is not compatible "
                          f"with the signature's shape {_shape_text(want_shape)}")
        return value

    def _check_batch(self, signature_name: str, shapes: Mapping[str, list]) -> None:
        """Every input of a signature has the same 0th dimension (the batch), at most
        max_batch_size: TF Serving's batching rules, checked on the declared shapes."""
        sizes = {name: shape[0] for name, shape in shapes.items() if shape}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{name}: {size}" for name, size in sorted(sizes.items()))
            raise invalid(f"the inputs of signature {signature_name} must have the same batch "
                          f"size (0th dimension), got {listed}")
        for size in sizes.values():
            if size is not None:
                check_batch_size(size, self.max_batch_size)

    def warmup(self) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (PredictLog records), as TF
        Serving does before a version becomes AVAILABLE; returns the number replayed."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not tf.io.gfile.exists(path):
            return 0
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        for record in tf.data.TFRecordDataset(path).take(_MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                continue
            request = log.predict_log.request
            self.predict(request.model_spec.signature_name, dict(request.inputs),
                         list(request.output_filter))
            count += 1
        return count
