"""A development model server that speaks TF Serving's gRPC and REST APIs.

This is for local development and tests, where the `tensorflow_model_server` binary is not at
hand: it loads the SavedModels in Python (`tf.saved_model.load`) and answers the same requests,
with the same JSON, status codes and error messages as TF Serving for what it implements.
Production serving uses TF Serving (a build with the tf-text ops), not this package.

    python -m bert_tf.cli.serve --model_base_path=serving/mrpc --model_name=mrpc \
        [--port=8500] [--rest_api_port=8501] [--host=127.0.0.1] [--max_batch_size=1024] \
        [--max_request_bytes=67108864] [--poll_seconds=2] [--drain_seconds=10]

What it serves (one model, TF Serving's "latest" version policy):
  * `<model_base_path>/<version>/saved_model.pb`: the newest numeric version that has a
    saved_model.pb is loaded (its `assets.extra/tf_serving_warmup_requests` replayed first, as
    TF Serving does); with `poll_seconds > 0` the base path is re-scanned and a newer version
    replaces the served one (older versions then report state END). A version that fails to
    load is retried once its files change (a copy still in progress).
  * gRPC (tensorflow_serving.apis): PredictionService.Predict and GetModelMetadata
    (`signature_def`, read from saved_model.pb), ModelService.GetModelStatus; Classify, Regress
    and MultiInference answer UNIMPLEMENTED.
  * REST: `POST /v1/models/<name>[/versions/<v>]:predict` (row `instances` and columnar
    `inputs` formats), `GET /v1/models/<name>[/versions/<v>]` (status) and `.../metadata`.

Limits: batches over `max_batch_size` (default 1024) and TensorProtos whose declared shape does
not match their values are INVALID_ARGUMENT before anything is expanded; bodies over
`max_request_bytes` are refused; a request whose deadline passed (gRPC) or whose client went
away is not run. `drain()` (SIGTERM in the command) finishes the requests in flight first.

The modules, by concern: `status` (status codes, HTTP mapping), `servable` (one loaded version,
request checks), `manager` (versions, the "latest" policy, status and metadata), `grpc_api`,
`json_codec` (REST JSON <-> tensors), `rest_api`, `http_transport`, `model_server`.

Library use (port 0 picks a free port):

    >>> with ModelServer("serving/mrpc", "mrpc") as server:  # doctest: +SKIP
    ...     print(server.grpc_address, server.rest_url)
"""
from bert_tf.serving.layout import read_signature_defs
from bert_tf.serving.server.manager import ModelManager
from bert_tf.serving.server.model_server import DEFAULT_DRAIN_SECONDS, ModelServer, check_port
from bert_tf.serving.server.rest_api import RestApi
from bert_tf.serving.server.servable import Servable
from bert_tf.serving.server.status import (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES,
                                           DEFAULT_SIGNATURE, ServingStatusError, dtype_string)

__all__ = ["DEFAULT_DRAIN_SECONDS", "DEFAULT_MAX_BATCH_SIZE", "DEFAULT_MAX_REQUEST_BYTES",
           "DEFAULT_SIGNATURE", "ModelManager", "ModelServer", "RestApi", "Servable",
           "ServingStatusError", "check_port", "dtype_string", "read_signature_defs"]
