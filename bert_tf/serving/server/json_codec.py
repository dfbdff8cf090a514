"""TF Serving's REST JSON <-> tensors: the row (`instances`) and columnar (`inputs`) request
formats and the `predictions` / `outputs` replies, with TF Serving's error messages
(json_tensor.cc) and rapidjson's parse errors.

A request document is checked before it is converted: nesting deeper than any tensor could use
and strings that are not valid Unicode (lone UTF-16 surrogates) are INVALID_ARGUMENT (HTTP 400),
and the batch cap applies to the number of rows before any value is converted.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf

from bert_tf.serving.client import nested_shape
from bert_tf.serving.server.status import (ServingStatusError, check_batch_size, dtype_string,
                                           invalid, status_text)

# Deepest nesting a request document may have: far beyond any tensor's rank, far below
# Python's recursion limit (which a 100,000-deep document would otherwise hit: HTTP 500).
MAX_JSON_DEPTH = 64


def json_text(value: Any) -> str:
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
        raise invalid(f"JSON Value: {json_text(value)} not formatted correctly for base64 data")
    text = value["b64"]
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None,
                                validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


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
        return invalid(f"JSON Value: {json_text(value)} Type: {_json_type(value)} is not of "
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
                raise invalid(f"Cannot convert JSON value: {json_text(value)} to "
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
        return _utf8(value)
    raise ServingStatusError(grpc.StatusCode.UNIMPLEMENTED,
                             f"Conversion of JSON Value: {json_text(value)} to type: "
                             f"{dtype_string(dtype)}")


def _fill(value: Any, level: int, shape: list[int], dtype: tf.DType, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(f"JSON Value: {json_text(value)} found at incorrect level: "
                           f"{level + 1} in the JSON DOM. Expected at level: {rank}")
        if isinstance(value, dict) and dtype != tf.string:
            raise invalid(f"JSON Value: {json_text(value)} Type: Object is not of expected "
                           f"type: {dtype_string(dtype)}")
        out.append(_json_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} "
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


def parse_document(body: bytes) -> Any:
    """A request body as JSON, with rapidjson's messages for what does not parse; nesting
    deeper than MAX_JSON_DEPTH and lone surrogates are rejected here (INVALID_ARGUMENT)."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as e:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: "
                      f"{e.start}") from None
    except json.JSONDecodeError as e:
        message = _RAPIDJSON_MESSAGES.get(e.msg, e.msg)
        raise invalid(f"JSON Parse error: {message} at offset: {e.pos}") from None
    except RecursionError:
        raise invalid(f"JSON Parse error: the document nests deeper than {MAX_JSON_DEPTH} "
                      "levels") from None
    _check_document(doc)
    return doc


def _check_document(doc: Any) -> None:
    """Depth and string checks over the whole document, iteratively (no recursion limit)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _utf8(value)
            continue
        if not isinstance(value, (list, dict)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise invalid(f"JSON Parse error: the document nests deeper than {MAX_JSON_DEPTH} "
                          "levels")
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            value = value.values()
        stack.extend((item, depth + 1) for item in value)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        # json.loads accepts "\ud800" escapes that pair with nothing; they are not text.
        raise invalid(f"JSON Parse error: Invalid encoding in string: a lone UTF-16 surrogate "
                      f"\\u{ord(text[e.start]):04x} at character {e.start} of a string") from None


def tensors_from_instances(instances: list, infos: Mapping[str, Any],
                           max_batch_size: int | None = None) -> dict[str, tf.Tensor]:
    """TF Serving's row format: a list of values (one input) or of {input: value} objects."""
    def is_object(v):
        return isinstance(v, dict) and not _is_b64(v)

    if not is_object(instances[0]) and len(infos) > 1:
        raise invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")
    check_batch_size(len(instances), max_batch_size)
    objects = is_object(instances[0])
    names = sorted(infos)
    values: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add(name, item):
        if name not in infos:
            raise invalid(f"JSON object: does not have named input: {name}")
        flat, shape = _json_values(item, tf.as_dtype(infos[name].dtype))
        if name not in sizes:
            sizes[name], shapes[name] = len(flat), shape
        elif sizes[name] != len(flat):
            raise invalid(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise invalid(f"Expecting shape [{','.join(map(str, shapes[name]))}] but got: "
                           f"[{','.join(map(str, shape))}]")
        values.setdefault(name, []).extend(flat)

    for index, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    add(name, item)
                except ServingStatusError as e:
                    raise invalid(f"Failed to process element: {index} key: {name} of "
                                   f"'instances' list. Error: {status_text(e)}") from None
            if set(element) != set(infos):
                raise invalid(f"Failed to process element: {index} of 'instances' list. JSON "
                               f"object: {json_text(element)} keys must be equal to: "
                               f"{','.join(names)}")
        else:
            if is_object(element):
                raise invalid(f"Expecting value/list but got object at item {index} of input "
                               "list")
            try:
                add(names[0], element)
            except ServingStatusError as e:
                raise invalid(f"Failed to process element: {index} of 'instances' list. Error: "
                               f"{status_text(e)}") from None
    return {name: _to_tensor(values[name], [len(instances)] + shapes[name],
                             tf.as_dtype(infos[name].dtype)) for name in values}


def tensors_from_inputs(inputs: Any, infos: Mapping[str, Any],
                        max_batch_size: int | None = None) -> dict[str, tf.Tensor]:
    """TF Serving's columnar format: a value (one input) or an {input: value} object."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(infos) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        inputs = {next(iter(infos)): inputs}
    tensors = {}
    for name in sorted(infos):
        if name not in inputs:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        dtype = tf.as_dtype(infos[name].dtype)
        if isinstance(inputs[name], list):
            check_batch_size(len(inputs[name]), max_batch_size)
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
        raise invalid(f"Failed to write JSON value for tensor type: "
                       f"{dtype_string(tf.as_dtype(array.dtype))}")
    return array.tolist()


def row_json(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    batch = None
    for name in sorted(outputs):
        array = outputs[name]
        if array.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                           f"expecting: {batch}")
        batch = array.shape[0]
    columns = {name: _json_array(name, outputs[name]) for name in sorted(outputs)}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{name: column[i] for name, column in columns.items()}
                            for i in range(batch or 0)]}


def columnar_json(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    columns = {name: _json_array(name, outputs[name]) for name in sorted(outputs)}
    if len(columns) == 1:
        return {"outputs": next(iter(columns.values()))}
    return {"outputs": columns}


