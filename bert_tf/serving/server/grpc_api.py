"""TF Serving's gRPC services (tensorflow_serving.apis) over a ModelManager.

PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus; the other methods
answer UNIMPLEMENTED. A request whose deadline passed or that the client cancelled while it
waited for a worker or was being decoded is not run.
"""
from __future__ import annotations

import logging

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from bert_tf.serving.server.manager import ModelManager
from bert_tf.serving.server.status import DEFAULT_SIGNATURE, ServingStatusError, invalid

logger = logging.getLogger(__name__)


def _abort(context: grpc.ServicerContext, error: Exception) -> None:
    if isinstance(error, ServingStatusError):
        context.abort(error.code, error.message)
    logger.exception("internal error in a gRPC call")
    context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


def check_still_wanted(context: grpc.ServicerContext) -> None:
    """Raises CANCELLED / DEADLINE_EXCEEDED when nobody waits for the answer any more, so the
    work is not started (gRPC does not stop a handler whose client went away)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise ServingStatusError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                 "Deadline Exceeded: the request's deadline passed before it "
                                 "was run")
    if not context.is_active():
        raise ServingStatusError(grpc.StatusCode.CANCELLED,
                                 "the client cancelled the request before it was run")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress, MultiInference: UNIMPLEMENTED."""

    def __init__(self, manager: ModelManager):
        self._manager = manager

    def Predict(self, request, context):  # noqa: N802 (gRPC's naming)
        try:
            check_still_wanted(context)
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            servable = self._manager.get(request.model_spec)
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            feeds, names = servable.prepare(signature_name, dict(request.inputs),
                                            list(request.output_filter))
            check_still_wanted(context)
            outputs = servable.run(signature_name, feeds, names)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature_name
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response
        except Exception as e:  # noqa: BLE001 - every failure becomes a gRPC status
            _abort(context, e)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            return self._manager.metadata(request)
        except Exception as e:  # noqa: BLE001
            _abort(context, e)

    def _unimplemented(self, what: str, context) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"{what} is not implemented by this development server (only Predict and "
                      "GetModelMetadata are); use TF Serving")

    def Classify(self, request, context):  # noqa: N802
        self._unimplemented("Classify", context)

    def Regress(self, request, context):  # noqa: N802
        self._unimplemented("Regress", context)

    def MultiInference(self, request, context):  # noqa: N802
        self._unimplemented("MultiInference", context)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus; HandleReloadConfigRequest: UNIMPLEMENTED."""

    def __init__(self, manager: ModelManager):
        self._manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            return self._manager.status(request.model_spec)
        except Exception as e:  # noqa: BLE001
            _abort(context, e)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "HandleReloadConfigRequest is not implemented by this development server")
