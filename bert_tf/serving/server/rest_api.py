"""TF Serving's REST API over a ModelManager, independent of the HTTP transport.

`RestApi.handle(method, path, body)` returns (HTTP status, JSON-ready reply) for
`POST /v1/models/<name>[/versions/<v>]:predict`, `GET /v1/models/<name>[/versions/<v>]` and
`.../metadata`, with TF Serving's paths, order of checks and messages.
"""
from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any, Callable

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from bert_tf.serving.server import json_codec
from bert_tf.serving.server.manager import SIGNATURE_DEF_FIELD, ModelManager
from bert_tf.serving.server.status import DEFAULT_SIGNATURE, ServingStatusError, invalid

logger = logging.getLogger(__name__)

# TF Serving's REST paths (case-insensitive), see its http_rest_api_util.cc.
_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_JSON_OPTIONS = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)


def _parse_version(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise invalid(f"Failed to convert version: {text} to numeric.") from None


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
    number = _parse_version(version)
    if number is not None:
        spec.version.value = number
    if label:
        spec.version_label = urllib.parse.unquote(label)
    return spec


def _still_wanted(cancelled: Callable[[], bool] | None) -> None:
    if cancelled is not None and cancelled():
        raise ServingStatusError(grpc.StatusCode.CANCELLED,
                                 "the client closed the connection before the request was run")


class RestApi:
    """TF Serving's REST API over a ModelManager, independent of the HTTP server:
    `handle(method, path, body)` returns (HTTP status, JSON-ready reply)."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def handle(self, method: str, path: str, body: bytes,
               cancelled: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any]]:
        """One request. `cancelled()` (optional) says whether the client went away: a predict
        request is then not run."""
        try:
            return 200, self._dispatch(method, path, body, cancelled)
        except ServingStatusError as e:
            return e.http_status, {"error": e.message}
        except Exception as e:  # noqa: BLE001 - reply, keep serving
            logger.exception("internal error in a REST call: %s %s", method, path)
            return 500, {"error": f"{type(e).__name__}: {e}"}

    def _dispatch(self, method: str, path: str, body: bytes,
                  cancelled: Callable[[], bool] | None) -> dict[str, Any]:
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
            return self.predict(spec, body, cancelled)
        if method == "GET" and (m := _STATUS_PATH.fullmatch(path)):
            if not m.group(1):
                raise invalid("Missing model name in request.")
            spec = _model_spec(m.group(1), m.group(2), m.group(3))
            if m.group(4):
                return self.metadata(spec)
            return json_format.MessageToDict(self.manager.status(spec), **_JSON_OPTIONS)
        raise invalid(f"Malformed request: {method} {path}")

    def predict(self, spec: model_pb2.ModelSpec, body: bytes,
                cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
        """`POST ...:predict`, in TF Serving's order of checks (JSON, signature, inputs)."""
        doc = json_codec.parse_document(body)
        if not isinstance(doc, dict):
            raise invalid(f"JSON Value: {json_codec.json_text(doc)} Is not object")
        signature_name = doc.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid(f"JSON Value: {json_codec.json_text(doc)} not formatted correctly. "
                          "'signature_name' key must be a string value.")
        servable = self.manager.get(spec)
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in servable.signature_defs:
            raise invalid(f'Serving signature name: "{signature_name}" not found in signature '
                          "def")
        infos = servable.signature_defs[signature_name].inputs
        if not infos:
            raise invalid(f"Failed to get input map for signature: {signature_name}")
        if "instances" in doc and "inputs" in doc:
            raise invalid(f"JSON Value: {json_codec.json_text(doc)} Not formatted correctly "
                          "expecting only one of 'inputs' or 'instances' keys to exist ")
        if "instances" in doc:
            instances = doc["instances"]
            if not isinstance(instances, list):
                raise invalid(f"JSON Value: {json_codec.json_text(doc)} Excepting 'instances' "
                              "to be an list/array")
            if not instances:
                raise invalid(f"JSON Value: {json_codec.json_text(doc)} No values in "
                              "'instances' array")
            tensors = json_codec.tensors_from_instances(instances, infos,
                                                        servable.max_batch_size)
            return json_codec.row_json(self._run(servable, signature_name, tensors, cancelled))
        if "inputs" in doc:
            tensors = json_codec.tensors_from_inputs(doc["inputs"], infos,
                                                     servable.max_batch_size)
            return json_codec.columnar_json(self._run(servable, signature_name, tensors,
                                                      cancelled))
        raise invalid("Missing 'inputs' or 'instances' key")

    @staticmethod
    def _run(servable, signature_name, tensors, cancelled):
        feeds, outputs = servable.prepare(signature_name, tensors)
        _still_wanted(cancelled)
        return servable.run(signature_name, feeds, outputs)

    def metadata(self, spec: model_pb2.ModelSpec) -> dict[str, Any]:
        """`GET .../metadata`: {"model_spec": ..., "metadata": {"signature_def": ...}}."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD])
        response = self.manager.metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return {"model_spec": json_format.MessageToDict(response.model_spec, **_JSON_OPTIONS),
                "metadata": {"signature_def": json_format.MessageToDict(signature_map,
                                                                        **_JSON_OPTIONS)}}
