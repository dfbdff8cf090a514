"""TF Serving warmup records: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these `PredictionLog` records (tensorflow-serving-api protos) when it loads a
version, so the first real request does not pay for graph tracing and memory allocation.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf


def predict_request(model_name: str, signature_name: str, inputs: Mapping[str, np.ndarray]):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for `inputs`."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def write_warmup_requests(path: str | os.PathLike, model_name: str,
                          requests: Sequence[tuple[str, Mapping[str, np.ndarray]]]) -> int:
    """Writes one PredictionLog per (signature_name, inputs) to the TFRecord file `path`."""
    from tensorflow_serving.apis import prediction_log_pb2

    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for signature_name, inputs in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(model_name, signature_name, inputs)))
            writer.write(log.SerializeToString())
    return len(requests)


def read_warmup_requests(path: str | os.PathLike) -> list:
    """The PredictionLog protos of a warmup file (for tests and inspection)."""
    from tensorflow_serving.apis import prediction_log_pb2

    out = []
    for record in tf.data.TFRecordDataset(os.fspath(path)):
        out.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    return out
