"""TF Serving's request protos and NumPy <-> TensorProto, without importing TensorFlow.

The generated `tensorflow_serving.apis` modules import `tensorflow.core.framework.*_pb2`, and
importing any `tensorflow.*` module runs `tensorflow/__init__.py` first: ~3 s and a GB of
address space for a client that only needs protobuf classes. `serving_apis()` loads the
generated modules with a bare stand-in for the `tensorflow` package (only its directory, so
just the `*_pb2` files run), then removes every `tensorflow*` entry it added, so a later
`import tensorflow` runs normally (the generated files then register the same descriptors
again, which protobuf accepts for identical files). When TensorFlow is already imported the
modules are imported normally.

`make_tensor_proto` / `make_ndarray` cover the dtypes a Predict request or reply carries
(numbers, bool, strings), as `tf.make_tensor_proto` / `tf.make_ndarray` write and read them.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import threading
import types
from typing import Any

import numpy as np

_APIS = ("model_pb2", "predict_pb2", "get_model_metadata_pb2", "get_model_status_pb2",
         "prediction_service_pb2_grpc")
_lock = threading.Lock()
_loaded: types.SimpleNamespace | None = None


def serving_apis() -> types.SimpleNamespace:
    """The tensorflow_serving.apis modules a client needs (`predict_pb2`, ...) and
    `tensor_pb2`, `types_pb2`, loaded without running TensorFlow's package initialisation."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _import_apis()
        return _loaded


def _import_apis() -> types.SimpleNamespace:
    names = [f"tensorflow_serving.apis.{name}" for name in _APIS] + [
        "tensorflow.core.framework.tensor_pb2", "tensorflow.core.framework.types_pb2"]
    if "tensorflow" in sys.modules:
        modules = [importlib.import_module(name) for name in names]
    else:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the tensorflow package (its generated protos) is not installed")
        before = set(sys.modules)
        stand_in = types.ModuleType("tensorflow")
        stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules["tensorflow"] = stand_in
        try:
            modules = [importlib.import_module(name) for name in names]
        finally:
            for name in set(sys.modules) - before:
                if name == "tensorflow" or name.startswith("tensorflow."):
                    del sys.modules[name]
    return types.SimpleNamespace(**{name.rsplit(".", 1)[1]: m for name, m in zip(names, modules)})


# DataType enum values (tensorflow/core/framework/types.proto) -> (NumPy dtype, value field).
_DTYPES = {
    1: (np.float32, "float_val"), 2: (np.float64, "double_val"), 3: (np.int32, "int_val"),
    4: (np.uint8, "int_val"), 5: (np.int16, "int_val"), 6: (np.int8, "int_val"),
    7: (object, "string_val"), 9: (np.int64, "int64_val"), 10: (np.bool_, "bool_val"),
    17: (np.uint16, "int_val"), 19: (np.float16, "half_val"), 22: (np.uint32, "uint32_val"),
    23: (np.uint64, "uint64_val"),
}
_DT_BY_NUMPY = {np.dtype(dtype): dt for dt, (dtype, _) in _DTYPES.items() if dtype is not object}
DT_STRING = 7


def dtype_by_name(name: str) -> Any:
    """The NumPy dtype of a `DT_*` name (as the REST metadata writes it); object for strings."""
    value = serving_apis().types_pb2.DataType.Value(name)
    if value not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype {name}")
    return _DTYPES[value][0]


def make_tensor_proto(array: np.ndarray):
    """A TensorProto of `array` (object arrays of bytes: DT_STRING; numbers: tensor_content,
    as tf.make_tensor_proto writes them)."""
    proto = serving_apis().tensor_pb2.TensorProto()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if array.dtype == object:
        proto.dtype = DT_STRING
        proto.string_val.extend(array.ravel().tolist())
        return proto
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype not in _DT_BY_NUMPY:
        raise ValueError(f"cannot send a NumPy array of dtype {array.dtype}")
    proto.dtype = _DT_BY_NUMPY[dtype]
    proto.tensor_content = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()
    return proto


def make_ndarray(proto) -> np.ndarray:
    """The NumPy array of a TensorProto (tensor_content or the typed value field; a short
    value field repeats its last value, as TensorFlow reads it)."""
    if proto.dtype not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype {proto.dtype} in a reply")
    dtype, field = _DTYPES[proto.dtype]
    shape = [d.size for d in proto.tensor_shape.dim]
    count = math.prod(shape)
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, np.dtype(dtype).newbyteorder("<")).astype(
            dtype).reshape(shape)
    values = list(getattr(proto, field))
    if len(values) < count:
        values += [values[-1] if values else (b"" if dtype is object else 0)] * (
            count - len(values))
    if dtype is object:
        out = np.empty(count, dtype=object)
        out[:] = values[:count]
        return out.reshape(shape)
    if proto.dtype == 19:  # half_val holds the float16 bit patterns
        return np.array(values[:count], np.uint16).view(np.float16).reshape(shape)
    return np.array(values[:count], dtype=dtype).reshape(shape)
