"""Canonical status codes of the development server and their REST (HTTP) mapping.

Every failed request becomes a `ServingStatusError` carrying a gRPC status code and TF Serving's
message; the gRPC front end aborts with it, the REST front end maps it to an HTTP status exactly
as TF Serving's http_server.cc does.
"""
from __future__ import annotations

import grpc
import tensorflow as tf

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_REQUEST_BYTES = 64 << 20
# Largest batch (0th dimension) a request may carry unless the server is told otherwise. A cap
# must exist by default: a 30-byte gRPC request can declare a million strings (issue 12).
DEFAULT_MAX_BATCH_SIZE = 1024

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
GRPC_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
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


def invalid(message: str) -> ServingStatusError:
    """An INVALID_ARGUMENT error (HTTP 400)."""
    return ServingStatusError(grpc.StatusCode.INVALID_ARGUMENT, message)


def status_text(error: ServingStatusError) -> str:
    """`CODE: message`, as TF Serving nests one status in another's message."""
    return f"{error.code.name}: {error.message}"


def dtype_string(dtype: tf.DType | int) -> str:
    """TF's DataTypeString of a dtype (`float` for float32, `string`, `int32`, ...)."""
    name = tf.as_dtype(dtype).name
    return _DTYPE_NAMES.get(name, name)


def check_batch_size(size: int, max_batch_size: int | None) -> None:
    """Rejects a batch (0th dimension) over `max_batch_size` with TF Serving's batching error;
    called before a request's values are expanded, on gRPC and REST alike."""
    if max_batch_size and size > max_batch_size:
        raise invalid(f"Task size {size} is larger than maximum input batch size "
                      f"{max_batch_size}")
