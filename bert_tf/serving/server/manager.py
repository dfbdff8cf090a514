"""The versions of one served model: TF Serving's directory layout and its "latest" policy.

`ModelManager.scan()` loads the newest version under the base path (a failed load keeps the
previous version serving and is retried once the version directory's contents change);
`get()` returns the served version for a request's ModelSpec; `status()` and `metadata()`
answer GetModelStatus and GetModelMetadata as TF Serving does.
"""
from __future__ import annotations

import logging
import os
import threading

import grpc
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from bert_tf.serving import layout
from bert_tf.serving.server.servable import Servable
from bert_tf.serving.server.status import ServingStatusError, invalid

logger = logging.getLogger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"
# A version that keeps failing (e.g. still being copied in) is logged in full once, then in one
# line per retry up to this many times, then no more until it loads.
_MAX_FAILURE_LOGS = 5


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
        # version -> (fingerprint of the directory that failed to load, attempts)
        self._failed: dict[int, tuple[tuple, int]] = {}

    def available_versions(self) -> list[int]:
        """Numeric version directories that hold a saved_model.pb, ascending."""
        return layout.versions(self.base_path, with_saved_model=True)

    def scan(self) -> bool:
        """Loads the newest version if it is not the one served; returns whether the served
        version changed. A version that fails to load is logged and retried once its
        directory's contents change (e.g. a copy that was still in progress); the previous
        version keeps serving."""
        with self._scan_lock:
            versions = self.available_versions()
            current = self._current
            if not versions:
                return self._unload_all(current)
            version = versions[-1]
            if current is not None and current.version == version:
                return False
            path = os.path.join(self.base_path, str(version))
            fingerprint = layout.directory_fingerprint(path)
            failed = self._failed.get(version)
            if failed is not None and failed[0] == fingerprint:
                return False
            with self._lock:
                self._states[version] = ("LOADING", "OK", "")
            try:
                servable = Servable(self.name, version, path, self.max_batch_size)
                warmed = servable.warmup()
            except Exception as e:  # noqa: BLE001 - reported in the log and the model status
                self._load_failed(version, path, fingerprint, e)
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

    def _unload_all(self, current: Servable | None) -> bool:
        if current is None:
            return False
        logger.warning("model %s: no versions left under %s; unloading version %d",
                       self.name, self.base_path, current.version)
        with self._lock:
            self._current = None
            self._states[current.version] = ("END", "OK", "")
        return True

    def _load_failed(self, version: int, path: str, fingerprint: tuple,
                     error: Exception) -> None:
        attempts = self._failed.get(version, (None, 0))[1] + 1
        self._failed[version] = (fingerprint, attempts)
        if attempts == 1:
            logger.exception("model %s: failed to load version %d from %s (retried when its "
                             "files change)", self.name, version, path)
        elif attempts <= _MAX_FAILURE_LOGS:
            logger.warning("model %s: version %d failed to load again (attempt %d%s): %s: %s",
                           self.name, version, attempts,
                           ", the last one logged" if attempts == _MAX_FAILURE_LOGS else "",
                           type(error).__name__, str(error).splitlines()[0] if str(error) else "")
        code = error.code.name if isinstance(error, ServingStatusError) else "UNKNOWN"
        with self._lock:
            self._states[version] = ("END", code, f"{type(error).__name__}: {error}")

    @property
    def version(self) -> int | None:
        """The served version (None before one is loaded)."""
        current = self._current
        return current.version if current is not None else None

    def get(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The servable for a request's ModelSpec; NOT_FOUND as TF Serving otherwise."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        if model_spec.WhichOneof("version_choice") == "version_label":
            raise invalid(f"Unrecognized servable version label: {model_spec.version_label}")
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
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        servable = self.get(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

