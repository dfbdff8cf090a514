"""A development model server that speaks TF Serving's gRPC and REST APIs.

This is for local development and tests, where the `tensorflow_model_server` binary is not at
hand: it loads the SavedModels in Python (`tf.saved_model.load`) and answers the same requests,
with the same JSON, status codes and error messages as TF Serving for what it implements.
Production serving uses TF Serving (a build with the tf-text ops), not this module.

    python -m bert_tf.serving.server --model_base_path=serving/mrpc --model_name=mrpc \
        [--port=8500] [--rest_api_port=8501] [--host=127.0.0.1] [--max_batch_size=64] \
        [--max_request_bytes=67108864] [--poll_seconds=2]

What it serves (one model, TF Serving's "latest" version policy):
  * `<model_base_path>/<version>/saved_model.pb`: the newest numeric version that has a
    saved_model.pb is loaded (its `assets.extra/tf_serving_warmup_requests` replayed first, as
    TF Serving does); with `poll_seconds > 0` the base path is re-scanned and a newer version
    replaces the served one (older versions then report state END).
  * gRPC (tensorflow_serving.apis): PredictionService.Predict and GetModelMetadata
    (`signature_def`, read from saved_model.pb), ModelService.GetModelStatus; Classify, Regress
    and MultiInference answer UNIMPLEMENTED.
  * REST: `POST /v1/models/<name>[/versions/<v>]:predict` (row `instances` and columnar
    `inputs` formats), `GET /v1/models/<name>[/versions/<v>]` (status) and `.../metadata`.

Library use (port 0 picks a free port):

    >>> with ModelServer("serving/mrpc", "mrpc") as server:  # doctest: +SKIP
    ...     print(server.grpc_address, server.rest_url)
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import signal
import threading
import urllib.parse
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tf-text ops the exported graphs use)
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from bert_tf.serving.client import nested_shape

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_REQUEST_BYTES = 64 << 20
_SIGNATURE_DEF_FIELD = "signature_def"
_WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
_VERSION_RE = re.compile(r"^[0-9]+$")

# TF Serving's REST paths (case-insensitive), see its http_rest_api_util.cc.
_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)

# TF Serving's mapping of canonical status codes to HTTP status codes (http_server.cc).
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500, grpc.StatusCode.UNAUTHENTICATED: 401,
}
# tf.errors.OpError.error_code (TF's canonical codes are gRPC's) -> grpc.StatusCode.
_GRPC_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
# TF's DataTypeString names where they differ from tf.DType.name.
_DTYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


class ServingStatusError(Exception):
    """A request failed with a canonical status `code` (grpc.StatusCode) and TF Serving's
    `message`; the REST front end maps `code` to an HTTP status as TF Serving does."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)


def _invalid(message: str) -> ServingStatusError:
    return ServingStatusError(grpc.StatusCode.INVALID_ARGUMENT, message)


def dtype_string(dtype: tf.DType | int) -> str:
    """TF's DataTypeString of a dtype (`float` for float32, `string`, `int32`, ...)."""
    name = tf.as_dtype(dtype).name
    return _DTYPE_NAMES.get(name, name)


def read_signature_defs(saved_model_dir: str | os.PathLike,
                        tags: Sequence[str] = ("serve",)) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the MetaGraph with `tags` in `<saved_model_dir>/saved_model.pb`
    (what TF Serving's GetModelMetadata returns, `__saved_model_init_op` included)."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(os.fspath(saved_model_dir), "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if set(tags) <= set(meta_graph.meta_info_def.tags):
            return dict(meta_graph.signature_def)
    raise ValueError(f"{saved_model_dir}: no MetaGraph with tags {list(tags)}")


# ----------------------------------------------------------------------------- one version
class Servable:
    """One loaded version of a SavedModel: signature lookup, request checks and inference."""

    def __init__(self, name: str, version: int, path: str, max_batch_size: int | None = None):
        self.name = name
        self.version = version
        self.path = path
        self.max_batch_size = max_batch_size
        self.signature_defs = read_signature_defs(path)
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
        signature_name = signature_name or DEFAULT_SIGNATURE
        sig = self.signature(signature_name)
        expected, sent = set(sig.inputs), set(inputs)
        if len(sent) == len(expected) and sent != expected:
            raise _invalid(f"input tensor alias not found in signature: {min(sent - expected)}. "
                           f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
        if sent != expected:
            raise _invalid(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
        outputs = list(output_filter)
        for alias in outputs:
            if alias not in sig.outputs:
                raise _invalid(f"output tensor alias not found in signature: {alias} Outputs "
                               f"expected to be in the set {{{','.join(sorted(sig.outputs))}}}.")
        if len(set(outputs)) != len(outputs):
            dup = next(a for a in outputs if outputs.count(a) > 1)
            raise _invalid(f"duplicate output tensor alias: {dup}")
        outputs = outputs or sorted(sig.outputs)

        feeds = {}
        for index, name in enumerate(sorted(sig.inputs)):
            info = sig.inputs[name]
            value = inputs[name]
            if isinstance(value, tensor_pb2.TensorProto):
                try:
                    value = tf.constant(tf.make_ndarray(value), dtype=tf.as_dtype(value.dtype))
                except Exception as e:  # malformed TensorProto
                    raise _invalid(f"tensor parsing error: {name} ({e})") from e
            want = tf.as_dtype(info.dtype)
            if value.dtype != want:
                raise _invalid(f"Expects arg[{index}] to be {dtype_string(want)} but "
                               f"{dtype_string(value.dtype)} is provided")
            want_shape = tf.TensorShape(info.tensor_shape)
            if not want_shape.is_compatible_with(value.shape):
                raise _invalid(f"Input {name!r}: shape {value.shape.as_list()} is not compatible "
                               f"with the signature's shape {_shape_text(want_shape)}")
            feeds[name] = value
        self._check_batch(feeds)
        try:
            result = self._functions[signature_name](**feeds)
        except tf.errors.OpError as e:
            raise ServingStatusError(_GRPC_CODE_BY_VALUE.get(e.error_code,
                                                             grpc.StatusCode.UNKNOWN),
                                     e.message) from e
        except (TypeError, ValueError) as e:  # argument conversion in the concrete function
            raise _invalid(str(e)) from e
        return {name: result[name].numpy() for name in outputs}

    def _check_batch(self, feeds: Mapping[str, tf.Tensor]) -> None:
        if not self.max_batch_size:
            return
        sizes = {int(t.shape[0]) for t in feeds.values() if t.shape.rank}
        if len(sizes) > 1:
            raise _invalid("Batching Run() input tensors must have equal 0th-dimension size")
        if sizes and max(sizes) > self.max_batch_size:
            raise _invalid(f"Task size {max(sizes)} is larger than maximum input batch size "
                           f"{self.max_batch_size}")

    def warmup(self) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (PredictLog records), as TF
        Serving does before a version becomes AVAILABLE; returns the number replayed."""
        path = os.path.join(self.path, _WARMUP_FILE)
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


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "[?]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape.as_list()) + "]"


# ----------------------------------------------------------------------------- versions
def _request_text(name: str, version: int | None) -> str:
    return f"Latest({name})" if version is None else f"Specific({name}, {version})"


class ModelManager:
    """The versions of one model under `model_base_path` (TF Serving's layout and its "latest"
    policy): `scan()` loads the newest version that has a saved_model.pb; `get()` returns the
    served version. Thread-safe."""

    def __init__(self, model_base_path: str | os.PathLike, model_name: str,
                 max_batch_size: int | None = None):
        self.base_path = os.fspath(model_base_path)
        self.name = model_name
        self.max_batch_size = max_batch_size
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._current: Servable | None = None
        # version -> (ModelVersionStatus.State name, error code name, error message)
        self._states: dict[int, tuple[str, str, str]] = {}
        self._failed: dict[int, float] = {}  # version -> mtime of the saved_model.pb that failed

    def available_versions(self) -> list[int]:
        """Numeric version directories that hold a saved_model.pb, ascending."""
        if not tf.io.gfile.isdir(self.base_path):
            return []
        versions = []
        for entry in tf.io.gfile.listdir(self.base_path):
            entry = entry.rstrip("/")
            if _VERSION_RE.match(entry) and tf.io.gfile.exists(
                    os.path.join(self.base_path, entry, "saved_model.pb")):
                versions.append(int(entry))
        return sorted(versions)

    def scan(self) -> bool:
        """Loads the newest version if it is not the one served; returns whether the served
        version changed. A version that fails to load is logged and retried only once its
        saved_model.pb changes; the previous version keeps serving."""
        with self._scan_lock:
            versions = self.available_versions()
            current = self._current
            if not versions:
                if current is not None:
                    logger.warning("model %s: no versions left under %s; unloading version %d",
                                   self.name, self.base_path, current.version)
                    with self._lock:
                        self._current = None
                        self._states[current.version] = ("END", "OK", "")
                    return True
                return False
            version = versions[-1]
            if current is not None and current.version == version:
                return False
            path = os.path.join(self.base_path, str(version))
            mtime = _mtime(os.path.join(path, "saved_model.pb"))
            if self._failed.get(version) == mtime:
                return False
            with self._lock:
                self._states[version] = ("LOADING", "OK", "")
            try:
                servable = Servable(self.name, version, path, self.max_batch_size)
                warmed = servable.warmup()
            except Exception as e:  # noqa: BLE001 - reported in the log and the model status
                logger.exception("model %s: failed to load version %d from %s", self.name,
                                 version, path)
                self._failed[version] = mtime
                code = e.code.name if isinstance(e, ServingStatusError) else "UNKNOWN"
                with self._lock:
                    self._states[version] = ("END", code, f"{type(e).__name__}: {e}")
                return False
            with self._lock:
                self._current = servable
                self._states[version] = ("AVAILABLE", "OK", "")
                if current is not None:
                    self._states[current.version] = ("END", "OK", "")
            self._failed.pop(version, None)
            logger.info("model %s: serving version %d from %s%s", self.name, version, path,
                        f" ({warmed} warmup requests replayed)" if warmed else "")
            return True

    @property
    def version(self) -> int | None:
        """The served version (None before one is loaded)."""
        current = self._current
        return current.version if current is not None else None

    def get(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The servable for a request's ModelSpec; NOT_FOUND as TF Serving otherwise."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        if model_spec.WhichOneof("version_choice") == "version_label":
            raise _invalid(f"Unrecognized servable version label: {model_spec.version_label}")
        current = self._current
        if (model_spec.name != self.name or current is None
                or (version is not None and version != current.version)):
            raise ServingStatusError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {_request_text(model_spec.name, version)}")
        return current

    def status(self, model_spec: model_pb2.ModelSpec
               ) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatus as TF Serving answers it."""
        name = model_spec.name
        with self._lock:
            states = dict(self._states) if name == self.name else {}
        response = get_model_status_pb2.GetModelStatusResponse()
        if model_spec.HasField("version"):
            version = model_spec.version.value
            if version not in states:
                raise ServingStatusError(grpc.StatusCode.NOT_FOUND,
                                         f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        elif not states:
            raise ServingStatusError(grpc.StatusCode.NOT_FOUND,
                                     f"Could not find any versions of model {name}")
        for version in sorted(states, reverse=True):
            state, code, message = states[version]
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            entry.status.SetInParent()  # error_code OK, error_message "" unless it failed
            entry.status.error_code = error_codes_pb2.Code.Value(code)
            entry.status.error_message = message
        return response

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                 ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """GetModelMetadata (`signature_def`) as TF Serving answers it."""
        if not request.HasField("model_spec"):
            raise _invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != _SIGNATURE_DEF_FIELD:
                raise _invalid(f"Metadata field {field} is not supported")
        servable = self.get(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata[_SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


# ----------------------------------------------------------------------------- gRPC
def _abort(context: grpc.ServicerContext, error: Exception) -> None:
    if isinstance(error, ServingStatusError):
        context.abort(error.code, error.message)
    logger.exception("internal error in a gRPC call")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager):
        self._manager = manager

    def Predict(self, request, context):
        try:
            if not request.HasField("model_spec"):
                raise _invalid("Missing ModelSpec")
            servable = self._manager.get(request.model_spec)
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            outputs = servable.predict(signature_name, dict(request.inputs),
                                       list(request.output_filter))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature_name
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response
        except Exception as e:  # noqa: BLE001 - every failure becomes a gRPC status
            _abort(context, e)

    def GetModelMetadata(self, request, context):
        try:
            return self._manager.metadata(request)
        except Exception as e:  # noqa: BLE001
            _abort(context, e)

    def _unimplemented(self, what: str, context) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"{what} is not implemented by this development server (only Predict and "
                      "GetModelMetadata are); use TF Serving")

    def Classify(self, request, context):
        self._unimplemented("Classify", context)

    def Regress(self, request, context):
        self._unimplemented("Regress", context)

    def MultiInference(self, request, context):
        self._unimplemented("MultiInference", context)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self._manager = manager

    def GetModelStatus(self, request, context):
        try:
            if not request.HasField("model_spec"):
                raise _invalid("Missing ModelSpec")
            return self._manager.status(request.model_spec)
        except Exception as e:  # noqa: BLE001
            _abort(context, e)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "HandleReloadConfigRequest is not implemented by this development server")


# ----------------------------------------------------------------------------- JSON <-> tensors
def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {_json_text(value)} not formatted correctly for base64 data")
    text = value["b64"]
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None,
                                validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


_INT_RANGES = {
    tf.int8: (-2**7, 2**7 - 1), tf.uint8: (0, 2**8 - 1), tf.int16: (-2**15, 2**15 - 1),
    tf.uint16: (0, 2**16 - 1), tf.int32: (-2**31, 2**31 - 1), tf.uint32: (0, 2**32 - 1),
    tf.int64: (-2**63, 2**63 - 1), tf.uint64: (0, 2**64 - 1),
}
_FLOAT_LIMITS = {tf.float32: (2**24 - 1, float(np.finfo(np.float32).max)),
                 tf.float64: (2**53 - 1, float(np.finfo(np.float64).max))}


def _json_scalar(value: Any, dtype: tf.DType) -> Any:
    """One JSON leaf as a value of `dtype`, with TF Serving's errors (json_tensor.cc)."""
    def type_error():
        return _invalid(f"JSON Value: {_json_text(value)} Type: {_json_type(value)} is not of "
                        f"expected type: {dtype_string(dtype)}")

    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype.is_floating:
        if not is_number:
            raise type_error()
        limits = _FLOAT_LIMITS.get(dtype)
        if limits:
            max_int, max_value = limits
            lossy = (abs(value) > max_int if isinstance(value, int)
                     else math.isfinite(value) and abs(value) > max_value)
            if lossy:
                raise _invalid(f"Cannot convert JSON value: {_json_text(value)} to "
                               f"{dtype_string(dtype)} without loss of precision.")
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise type_error()
        return value
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise type_error()
        return value
    if dtype == tf.string:
        if isinstance(value, dict):
            return _b64decode(value)
        if not isinstance(value, str):
            raise type_error()
        return value.encode("utf-8")
    raise ServingStatusError(grpc.StatusCode.UNIMPLEMENTED,
                             f"Conversion of JSON Value: {_json_text(value)} to type: "
                             f"{dtype_string(dtype)}")


def _fill(value: Any, level: int, shape: list[int], dtype: tf.DType, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(f"JSON Value: {_json_text(value)} found at incorrect level: "
                           f"{level + 1} in the JSON DOM. Expected at level: {rank}")
        if isinstance(value, dict) and dtype != tf.string:
            raise _invalid(f"JSON Value: {_json_text(value)} Type: Object is not of expected "
                           f"type: {dtype_string(dtype)}")
        out.append(_json_scalar(value, dtype))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                       f"expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _json_values(value: Any, dtype: tf.DType) -> tuple[list, list[int]]:
    """The flat values and the shape of a (nested-list) JSON value."""
    shape = nested_shape(value)
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    return flat, shape


def _to_tensor(flat: list, shape: Sequence[int], dtype: tf.DType) -> tf.Tensor:
    np_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    return tf.constant(np.array(flat, dtype=np_dtype).reshape(shape), dtype=dtype)


# Python's json messages -> rapidjson's (which TF Serving reports), where they correspond.
_RAPIDJSON_MESSAGES = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Extra data": "The document root must not be followed by other values.",
}


def _status_text(error: ServingStatusError) -> str:
    return f"{error.code.name}: {error.message}"


def _tensors_from_instances(instances: list, infos: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """TF Serving's row format: a list of values (one input) or of {input: value} objects."""
    def is_object(v):
        return isinstance(v, dict) and not _is_b64(v)

    if not is_object(instances[0]) and len(infos) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")
    objects = is_object(instances[0])
    names = sorted(infos)
    values: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add(name, item):
        if name not in infos:
            raise _invalid(f"JSON object: does not have named input: {name}")
        flat, shape = _json_values(item, tf.as_dtype(infos[name].dtype))
        if name not in sizes:
            sizes[name], shapes[name] = len(flat), shape
        elif sizes[name] != len(flat):
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise _invalid(f"Expecting shape [{','.join(map(str, shapes[name]))}] but got: "
                           f"[{','.join(map(str, shape))}]")
        values.setdefault(name, []).extend(flat)

    for index, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    add(name, item)
                except ServingStatusError as e:
                    raise _invalid(f"Failed to process element: {index} key: {name} of "
                                   f"'instances' list. Error: {_status_text(e)}") from None
            if set(element) != set(infos):
                raise _invalid(f"Failed to process element: {index} of 'instances' list. JSON "
                               f"object: {_json_text(element)} keys must be equal to: "
                               f"{','.join(names)}")
        else:
            if is_object(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input "
                               "list")
            try:
                add(names[0], element)
            except ServingStatusError as e:
                raise _invalid(f"Failed to process element: {index} of 'instances' list. Error: "
                               f"{_status_text(e)}") from None
    return {name: _to_tensor(values[name], [len(instances)] + shapes[name],
                             tf.as_dtype(infos[name].dtype)) for name in values}


def _tensors_from_inputs(inputs: Any, infos: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """TF Serving's columnar format: a value (one input) or an {input: value} object."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(infos) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        inputs = {next(iter(infos)): inputs}
    tensors = {}
    for name in sorted(infos):
        if name not in inputs:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        dtype = tf.as_dtype(infos[name].dtype)
        flat, shape = _json_values(inputs[name], dtype)
        tensors[name] = _to_tensor(flat, shape, dtype)
    return tensors


def _json_array(name: str, array: np.ndarray) -> Any:
    """An output as JSON-ready nested lists, as TF Serving writes it: float32 in its shortest
    round-trip form, strings as UTF-8 text (names ending in `_bytes` as {"b64": ...})."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind in "SU":
        if name.endswith("_bytes"):
            def convert(b):
                return {"b64": base64.b64encode(bytes(b)).decode("ascii")}
        else:
            def convert(b):
                return b.decode("utf-8", errors="replace") if isinstance(b, bytes) else str(b)
        out = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            out[index] = convert(item)
        return out.tolist()
    if array.dtype == np.float64:
        return array.tolist()
    if array.dtype.kind == "f" or array.dtype == tf.bfloat16.as_numpy_dtype:
        return array.astype(np.float32).astype(str).astype(np.float64).tolist()
    if array.dtype.kind == "c":
        raise _invalid(f"Failed to write JSON value for tensor type: "
                       f"{dtype_string(tf.as_dtype(array.dtype))}")
    return array.tolist()


def _row_json(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    batch = None
    for name in sorted(outputs):
        array = outputs[name]
        if array.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _invalid(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                           f"expecting: {batch}")
        batch = array.shape[0]
    columns = {name: _json_array(name, outputs[name]) for name in sorted(outputs)}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{name: column[i] for name, column in columns.items()}
                            for i in range(batch or 0)]}


def _columnar_json(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    columns = {name: _json_array(name, outputs[name]) for name in sorted(outputs)}
    if len(columns) == 1:
        return {"outputs": next(iter(columns.values()))}
    return {"outputs": columns}


# ----------------------------------------------------------------------------- REST
def _parse_version(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise _invalid(f"Failed to convert version: {text} to numeric.") from None


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
    number = _parse_version(version)
    if number is not None:
        spec.version.value = number
    if label:
        spec.version_label = urllib.parse.unquote(label)
    return spec


class RestApi:
    """TF Serving's REST API over a ModelManager, independent of the HTTP server:
    `handle(method, path, body)` returns (HTTP status, JSON-ready reply)."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._dispatch(method, path, body)
        except ServingStatusError as e:
            return e.http_status, {"error": e.message}
        except Exception as e:  # noqa: BLE001 - reply, keep serving
            logger.exception("internal error in a REST call: %s %s", method, path)
            return 500, {"error": f"{type(e).__name__}: {e}"}

    def _dispatch(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        if not _API_PATH.fullmatch(path):
            raise ServingStatusError(grpc.StatusCode.NOT_FOUND, f"Not found: {method} {path}")
        if method == "POST" and (m := _PREDICT_PATH.fullmatch(path)):
            spec = _model_spec(m.group(1), m.group(2), m.group(3))
            verb = m.group(4).lower()
            if verb != "predict":
                raise ServingStatusError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{verb} is not implemented by this development server (only predict is); "
                    "use TF Serving")
            return self.predict(spec, body)
        if method == "GET" and (m := _STATUS_PATH.fullmatch(path)):
            if not m.group(1):
                raise _invalid("Missing model name in request.")
            spec = _model_spec(m.group(1), m.group(2), m.group(3))
            if m.group(4):
                return self.metadata(spec)
            return json_format.MessageToDict(self.manager.status(spec),
                                             always_print_fields_with_no_presence=True,
                                             preserving_proto_field_name=True)
        raise _invalid(f"Malformed request: {method} {path}")

    def predict(self, spec: model_pb2.ModelSpec, body: bytes) -> dict[str, Any]:
        """`POST ...:predict`, in TF Serving's order of checks (JSON, signature, inputs)."""
        if not body:
            raise _invalid("JSON Parse error: The document is empty")
        try:
            doc = json.loads(body)
        except UnicodeDecodeError as e:
            raise _invalid(f"JSON Parse error: Invalid encoding in string. at offset: "
                           f"{e.start}") from None
        except json.JSONDecodeError as e:
            message = _RAPIDJSON_MESSAGES.get(e.msg, e.msg)
            raise _invalid(f"JSON Parse error: {message} at offset: {e.pos}") from None
        if not isinstance(doc, dict):
            raise _invalid(f"JSON Value: {_json_text(doc)} Is not object")
        signature_name = doc.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise _invalid(f"JSON Value: {_json_text(doc)} not formatted correctly. "
                           "'signature_name' key must be a string value.")
        servable = self.manager.get(spec)
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in servable.signature_defs:
            raise _invalid(f'Serving signature name: "{signature_name}" not found in signature '
                           "def")
        infos = servable.signature_defs[signature_name].inputs
        if not infos:
            raise _invalid(f"Failed to get input map for signature: {signature_name}")
        if "instances" in doc and "inputs" in doc:
            raise _invalid(f"JSON Value: {_json_text(doc)} Not formatted correctly expecting "
                           "only one of 'inputs' or 'instances' keys to exist ")
        if "instances" in doc:
            instances = doc["instances"]
            if not isinstance(instances, list):
                raise _invalid(f"JSON Value: {_json_text(doc)} Excepting 'instances' to be an "
                               "list/array")
            if not instances:
                raise _invalid(f"JSON Value: {_json_text(doc)} No values in 'instances' array")
            tensors = _tensors_from_instances(instances, infos)
            return _row_json(servable.predict(signature_name, tensors))
        if "inputs" in doc:
            tensors = _tensors_from_inputs(doc["inputs"], infos)
            return _columnar_json(servable.predict(signature_name, tensors))
        raise _invalid("Missing 'inputs' or 'instances' key")

    def metadata(self, spec: model_pb2.ModelSpec) -> dict[str, Any]:
        """`GET .../metadata`: {"model_spec": ..., "metadata": {"signature_def": ...}}."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[_SIGNATURE_DEF_FIELD])
        response = self.manager.metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[_SIGNATURE_DEF_FIELD].Unpack(signature_map)
        options = dict(always_print_fields_with_no_presence=True,
                       preserving_proto_field_name=True)
        return {"model_spec": json_format.MessageToDict(response.model_spec, **options),
                "metadata": {"signature_def": json_format.MessageToDict(signature_map,
                                                                        **options)}}


class _RequestTooLarge(Exception):
    pass


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bert_tf-dev-model-server"
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_PUT(self):  # noqa: N802 - TF Serving answers other methods "Malformed request"
        self._serve("PUT")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        limit = self.server.max_request_bytes
        try:
            body = self._read_body(limit)
        except _RequestTooLarge as e:
            self._reply(413, {"error": str(e)})
            return
        except ValueError as e:
            self.close_connection = True
            self._reply(400, {"error": f"Malformed request body: {e}"})
            return
        path = urllib.parse.urlsplit(self.path).path
        status, reply = self.server.api.handle(method, path, body)
        self._reply(status, reply)

    def _read_body(self, limit: int | None) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if limit and length > limit:
            # Drain a moderately oversized body so the client reads the reply; close otherwise.
            if length <= 16 * limit:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            else:
                self.close_connection = True
            raise _RequestTooLarge(f"Request body of {length} bytes exceeds the server's limit "
                                   f"of {limit} bytes (--max_request_bytes)")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if limit and total > limit:
                self.close_connection = True
                raise _RequestTooLarge(f"Request body exceeds the server's limit of {limit} "
                                       "bytes (--max_request_bytes)")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _reply(self, status: int, reply: dict[str, Any]) -> None:
        data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        logger.debug("REST %s - %s", self.address_string(), format % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, api: RestApi, max_request_bytes: int | None):
        self.api = api
        self.max_request_bytes = max_request_bytes
        super().__init__(address, _HttpHandler)

    def handle_error(self, request, client_address):
        # A client that went away mid-reply is not the server's problem: no traceback.
        logger.debug("REST connection from %s failed", client_address, exc_info=True)


# ----------------------------------------------------------------------------- the server
def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class ModelServer:
    """TF Serving's gRPC and REST APIs for the SavedModels under `model_base_path`, in-process.

    `grpc_port` / `rest_port`: 0 picks a free port, None disables that API. `max_batch_size`
    rejects larger batches (TF Serving's batching error); `max_request_bytes` caps request
    bodies and gRPC messages; `poll_seconds > 0` re-scans `model_base_path` for new versions.
    `start()` binds (the actual ports are then in `.grpc_port` / `.rest_port`); `stop()` or the
    context manager shuts down.
    """

    def __init__(self, model_base_path: str | os.PathLike, model_name: str, *,
                 host: str = "127.0.0.1", grpc_port: int | None = 0, rest_port: int | None = 0,
                 max_batch_size: int | None = None,
                 max_request_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES,
                 poll_seconds: float = 0.0, grpc_workers: int = 16):
        if not model_name:
            raise ValueError("model_name must not be empty")
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be positive, got {max_batch_size}")
        self.model_base_path = os.fspath(model_base_path)
        self.model_name = model_name
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.max_request_bytes = max_request_bytes or None
        self.poll_seconds = poll_seconds
        self.manager = ModelManager(self.model_base_path, model_name, max_batch_size)
        self.rest_api = RestApi(self.manager)
        self._grpc_workers = grpc_workers
        self._grpc_server: grpc.Server | None = None
        self._http_server: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def version(self) -> int | None:
        """The served model version."""
        return self.manager.version

    @property
    def grpc_address(self) -> str:
        """`host:port` of the gRPC API (after start())."""
        return _host_port(self.host, self.grpc_port)

    @property
    def rest_url(self) -> str:
        """`http://host:port` of the REST API (after start())."""
        return f"http://{_host_port(self.host, self.rest_port)}"

    def start(self) -> ModelServer:
        """Loads the newest version, binds the ports and starts serving; returns self."""
        if not tf.io.gfile.isdir(self.model_base_path):
            raise FileNotFoundError(f"--model_base_path {self.model_base_path} is not a "
                                    "directory")
        self.manager.scan()
        if self.manager.version is None and self.poll_seconds <= 0:
            if self.manager.available_versions():
                raise ValueError(f"the newest version under {self.model_base_path} failed to "
                                 "load (see the log)")
            raise FileNotFoundError(
                f"no version under {self.model_base_path} (expected "
                "<model_base_path>/<version>/saved_model.pb)")
        self._stopping.clear()
        try:
            if self.grpc_port is not None:
                self._start_grpc()
            if self.rest_port is not None:
                self._start_rest()
        except BaseException:
            self.stop()
            raise
        if self.poll_seconds > 0:
            thread = threading.Thread(target=self._poll, name="model-version-poller",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info(
            "Development model server (use TF Serving in production): model %s version %s "
            "from %s; gRPC on %s, REST on %s", self.model_name, self.manager.version,
            self.model_base_path,
            self.grpc_address if self._grpc_server else "off",
            self.rest_url if self._http_server else "off")
        return self

    def _start_grpc(self) -> None:
        options = [("grpc.so_reuseport", 0), ("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", self.max_request_bytes or -1)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._grpc_workers,
                                                        thread_name_prefix="grpc-predict"),
                             options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.manager), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.manager), server)
        address = _host_port(self.host, self.grpc_port)
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as e:
            raise OSError(f"cannot bind gRPC to {address}: {e}") from e
        if not port:
            raise OSError(f"cannot bind gRPC to {address}")
        server.start()
        self._grpc_server, self.grpc_port = server, port

    def _start_rest(self) -> None:
        host = self.host.strip("[]")
        server_class = _HttpServer
        if ":" in host:
            import socket

            server_class = type("_HttpServer6", (_HttpServer,),
                                {"address_family": socket.AF_INET6})
        server = server_class((host, self.rest_port), self.rest_api, self.max_request_bytes)
        self._http_server, self.rest_port = server, server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  name="rest-api", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            try:
                self.manager.scan()
            except Exception:  # noqa: BLE001 - keep polling
                logger.exception("model %s: scanning %s failed", self.model_name,
                                 self.model_base_path)

    def reload(self) -> bool:
        """Re-scans model_base_path now; returns whether the served version changed."""
        return self.manager.scan()

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops both APIs (in-flight gRPC calls get `grace` seconds) and the poller."""
        self._stopping.set()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait()
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def wait(self) -> None:
        """Blocks until stop() is called (from another thread or a signal handler)."""
        while not self._stopping.wait(1.0):
            pass

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------- CLI
def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("model_base_path", None,
                        "Directory of numeric version subdirectories holding SavedModels.")
    flags.DEFINE_string("model_name", None, "Name the model is served under.")
    flags.DEFINE_integer("port", 8500, "gRPC port (0: pick a free one).")
    flags.DEFINE_integer("rest_api_port", 8501, "REST port (0: pick a free one).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 exposes the server).")
    flags.DEFINE_integer("max_batch_size", None, "Reject requests with larger batches.")
    flags.DEFINE_integer("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES,
                         "Largest REST body / gRPC message accepted (0: no limit).")
    flags.DEFINE_float("poll_seconds", 0.0,
                       "Re-scan model_base_path for new versions this often (0: never).")
    flags.mark_flags_as_required(["model_base_path", "model_name"])


def main(argv: list[str]) -> None:
    """absl entry point: serves until SIGINT or SIGTERM."""
    from absl import flags

    del argv
    FLAGS = flags.FLAGS
    server = ModelServer(FLAGS.model_base_path, FLAGS.model_name, host=FLAGS.host,
                         grpc_port=FLAGS.port, rest_port=FLAGS.rest_api_port,
                         max_batch_size=FLAGS.max_batch_size,
                         max_request_bytes=FLAGS.max_request_bytes,
                         poll_seconds=FLAGS.poll_seconds)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        logger.info("shutting down")
        server.stop()


__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "DEFAULT_SIGNATURE", "ModelManager", "ModelServer",
           "RestApi", "Servable", "ServingStatusError", "dtype_string", "read_signature_defs"]

if __name__ == "__main__":
    from bert_tf.cli import common as cli

    _define_flags()
    cli.run(main, user_errors=(OSError,))  # e.g. a port in use: one line, exit status 2
