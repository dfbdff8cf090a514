"""The development model server (bert_tf.serving.server) and the clients (bert_tf.serving.client,
export/serving_client.py) against small SavedModels in TF Serving's layout, over real sockets."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from bert_tf.serving import client
from bert_tf.serving.server import ModelServer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "toy"
TEXTS = ["hello world", "a", "the quick brown fox jumps", "", "ünïcødé text ✓"]
PAIRS_B = ["x", "yy yy", "", "zzz", "b"]
IDS = [[1, 2, 3], [4, 5, 6]]
MAX_BATCH = 16
MAX_BYTES = 32 << 10

_TEXT = tf.TensorSpec([None], tf.string, name="text")
_TEXT_B = tf.TensorSpec([None], tf.string, name="text_b")
_IDS = tf.TensorSpec([None, None], tf.int32, name="input_word_ids")


class ToyModel(tf.Module):
    """A stand-in for the exported BERT models: string signatures with a tf-text op inside,
    float/int/string outputs, a pair signature, an int32 matrix signature, a one-output
    signature, and regression / fill-mask shaped replies. `version` scales the logits, so
    versions answer differently."""

    def __init__(self, version: int):
        super().__init__()
        self.scale = tf.Variable(float(version))
        self.labels = tf.constant(["neg", "neutral", "pos"])
        self.vocab = tf.constant(["the", "a", "cat", "dog"])

    def _classify(self, text, extra):
        n = tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.float32) + extra
        logits = tf.stack([1.0 - 0.3 * n, 0.1 * self.scale * n, 0.2 * n - self.scale], axis=1)
        tokens = tf_text.WhitespaceTokenizer().tokenize(text)
        return {"probabilities": tf.nn.softmax(logits), "logits": logits,
                "label": tf.gather(self.labels, tf.argmax(logits, axis=1)),
                "num_tokens": tokens.row_lengths()}

    @tf.function(input_signature=[_TEXT])
    def serve(self, text):
        return self._classify(text, 0.0)

    @tf.function(input_signature=[_TEXT, _TEXT_B])
    def pair(self, text, text_b):
        return self._classify(text, tf.cast(tf.strings.length(text_b), tf.float32))

    @tf.function(input_signature=[_IDS])
    def encode(self, input_word_ids):
        return {"total": tf.reduce_sum(input_word_ids, axis=1),
                "scaled": tf.cast(input_word_ids, tf.float32) * self.scale / 3.0}

    @tf.function(input_signature=[_TEXT])
    def upper(self, text):
        return {"upper": tf.strings.upper(text)}

    @tf.function(input_signature=[_TEXT])
    def regress(self, text):
        return {"score": tf.cast(tf.strings.length(text), tf.float32) / 7.0}

    @tf.function(input_signature=[_TEXT])
    def fill(self, text):
        b = tf.shape(text)[0]
        n = tf.strings.length(text)
        positions = tf.stack([n % 5 + 1, tf.where(n > 3, 7, -1)], axis=1)  # [B, 2]
        ids = tf.tile(tf.constant([[[2, 3], [0, 1]]]), [b, 1, 1])  # [B, 2, 2]
        scores = tf.tile(tf.constant([[[0.75, 0.25], [0.5, 0.125]]]), [b, 1, 1])
        return {"masked_lm_positions": positions, "top_k_ids": ids,
                "top_k_tokens": tf.gather(self.vocab, ids), "top_k_scores": scores}

    def signatures(self):
        return {"serving_default": self.serve, "text_pair": self.pair, "encode": self.encode,
                "upper": self.upper, "regress": self.regress, "fill": self.fill}


def save_version(path: str, version: int) -> str:
    module = ToyModel(version)
    tf.saved_model.save(module, path, signatures=module.signatures())
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`base/1`, `base/2` (served) and a staged version 3 outside the base path."""
    root = tmp_path_factory.mktemp("serving")
    base = root / MODEL
    for version in (1, 2):
        save_version(str(base / str(version)), version)
    os.makedirs(base / "7")  # not a SavedModel (no saved_model.pb): ignored
    os.makedirs(base / "notes")  # not a version: ignored
    staged = save_version(str(root / "staged3"), 3)
    return {"base": str(base), "staged3": staged, "root": root}


@pytest.fixture(scope="module")
def reference(models):
    """In-process predictions of version 2: signature name -> function(**inputs) -> numpy."""
    loaded = tf.saved_model.load(os.path.join(models["base"], "2"))

    def run(signature, **inputs):
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}
    run.loaded = loaded
    return run


@pytest.fixture(scope="module")
def server(models):
    with ModelServer(models["base"], MODEL, grpc_port=0, rest_port=0, max_batch_size=MAX_BATCH,
                     max_request_bytes=MAX_BYTES) as s:
        yield s


def http(method, url, body=None, raw=None):
    """(status, decoded JSON reply) of one REST call."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def grpc_stubs(server):
    channel = grpc.insecure_channel(server.grpc_address)
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


def predict_request(inputs, signature="", version=None, name=MODEL, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def assert_same(got: dict, want: dict):
    assert sorted(got) == sorted(want)
    for name in want:
        g, w = np.asarray(got[name]), np.asarray(want[name])
        assert g.shape == w.shape, name
        if w.dtype == object:
            assert g.tolist() == w.tolist(), name
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


# ----------------------------------------------------------------------------- versions, status
def test_newest_version_is_served_with_status(server):
    assert server.version == 2
    status, reply = http("GET", f"{server.rest_url}/v1/models/{MODEL}")
    assert status == 200
    assert reply == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]}
    assert http("GET", f"{server.rest_url}/v1/models/{MODEL}/versions/2")[1] == reply
    assert http("GET", f"{server.rest_url}/v1/models/{MODEL}/versions/1") == (
        404, {"error": f"Could not find version 1 of model {MODEL}"})
    assert http("GET", f"{server.rest_url}/v1/models/nope") == (
        404, {"error": "Could not find any versions of model nope"})

    _, models_stub = grpc_stubs(server)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = models_stub.GetModelStatus(request, timeout=10)
    [entry] = response.model_version_status
    assert (entry.version, entry.state) == (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as e:
        models_stub.GetModelStatus(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_new_version_is_picked_up_by_polling(models, tmp_path):
    base = tmp_path / MODEL
    shutil.copytree(os.path.join(models["base"], "1"), base / "1")
    with ModelServer(str(base), MODEL, poll_seconds=0.2) as s:
        assert s.version == 1
        before = client.predict_grpc(s.grpc_address, MODEL, {"text": TEXTS})
        # Stage beside, then rename: the poller never sees a half-copied version.
        shutil.copytree(models["staged3"], base / ".incoming")
        os.rename(base / ".incoming", base / "3")
        deadline = time.time() + 30
        while s.version != 3 and time.time() < deadline:
            time.sleep(0.1)
        assert s.version == 3
        after = client.predict_rest(s.rest_url, MODEL, {"text": TEXTS})
        want = tf.saved_model.load(models["staged3"]).signatures["serving_default"](
            text=tf.constant(TEXTS))
        assert_same(after, {k: v.numpy() for k, v in want.items()})
        assert not np.array_equal(before["logits"], after["logits"])
        status = http("GET", f"{s.rest_url}/v1/models/{MODEL}")[1]["model_version_status"]
        assert [(v["version"], v["state"]) for v in status] == [("3", "AVAILABLE"),
                                                                ("1", "END")]
        with pytest.raises(client.ServingError, match=r"Specific\(toy, 1\)"):
            client.predict_grpc(s.grpc_address, MODEL, {"text": TEXTS}, version=1)

        # A newer version that fails to load: version 3 keeps serving, the status says why.
        os.makedirs(base / "4")
        (base / "4" / "saved_model.pb").write_bytes(b"not a SavedModel")
        assert s.reload() is False
        assert s.version == 3
        status = http("GET", f"{s.rest_url}/v1/models/{MODEL}/versions/4")[1]
        [entry] = status["model_version_status"]
        assert (entry["state"], entry["status"]["error_code"]) == ("END", "UNKNOWN")
        assert entry["status"]["error_message"]
        assert client.predict_rest(s.rest_url, MODEL, {"text": TEXTS})["label"].shape == (5,)


def test_a_version_copied_in_non_atomically_is_retried(models, tmp_path, caplog):
    """issue 12 item 8: a version whose saved_model.pb arrived before its variables failed
    once and was retried only when saved_model.pb changed; now any change of its files is."""
    base = tmp_path / MODEL
    shutil.copytree(os.path.join(models["base"], "1"), base / "1")
    with ModelServer(str(base), MODEL, grpc_port=None, rest_port=None) as s:
        assert s.version == 1
        os.makedirs(base / "5")
        shutil.copy(os.path.join(models["staged3"], "saved_model.pb"), base / "5")
        assert s.reload() is False and s.version == 1
        assert s.reload() is False  # nothing changed: not retried
        shutil.copytree(os.path.join(models["staged3"], "variables"), base / "5" / "variables")
        assert s.reload() is True and s.version == 5
        assert [r.levelname for r in caplog.records if "version 5" in r.getMessage()
                and "fail" in r.getMessage()] == ["ERROR"]
        # A copy that keeps failing is retried on every change, with a bounded log.
        os.makedirs(base / "6")
        shutil.copy(os.path.join(models["staged3"], "saved_model.pb"), base / "6")
        for attempt in range(8):
            (base / "6" / f"part{attempt}").write_bytes(b"x")
            assert s.reload() is False and s.version == 5
        assert [r.levelname for r in caplog.records if "version 6" in r.getMessage()] == [
            "ERROR", "WARNING", "WARNING", "WARNING", "WARNING"]


# ----------------------------------------------------------------------------- gRPC
def test_grpc_predict_matches_in_process(server, reference):
    stub, _ = grpc_stubs(server)
    cases = [("", {"text": TEXTS}, "serving_default"),
             ("text_pair", {"text": TEXTS, "text_b": PAIRS_B}, "text_pair"),
             ("encode", {"input_word_ids": np.array(IDS, np.int32)}, "encode"),
             ("upper", {"text": TEXTS}, "upper")]
    for signature, inputs, resolved in cases:
        response = stub.Predict(predict_request(inputs, signature, version=2), timeout=10)
        assert response.model_spec.name == MODEL
        assert response.model_spec.version.value == 2
        assert response.model_spec.signature_name == resolved
        got = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        assert_same(got, reference(resolved, **inputs))
    response = stub.Predict(predict_request({"text": TEXTS}, output_filter=["label"]),
                            timeout=10)
    assert list(response.outputs) == ["label"]


def test_grpc_metadata_lists_signatures(server):
    stub, _ = grpc_stubs(server)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = stub.GetModelMetadata(request, timeout=10)
    assert (response.model_spec.name, response.model_spec.version.value) == (MODEL, 2)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    defs = signature_map.signature_def
    assert {"serving_default", "text_pair", "encode", "upper"} <= set(defs)
    dtype = tf.dtypes.as_dtype
    assert {k: dtype(v.dtype) for k, v in defs["serving_default"].inputs.items()} == {
        "text": tf.string}
    assert {k: dtype(v.dtype) for k, v in defs["serving_default"].outputs.items()} == {
        "probabilities": tf.float32, "logits": tf.float32, "label": tf.string,
        "num_tokens": tf.int64}
    assert sorted(defs["text_pair"].inputs) == ["text", "text_b"]
    encode_in = defs["encode"].inputs["input_word_ids"]
    assert dtype(encode_in.dtype) == tf.int32
    assert [d.size for d in encode_in.tensor_shape.dim] == [-1, -1]
    assert defs["serving_default"].method_name == "tensorflow/serving/predict"

    request.ClearField("metadata_field")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModelMetadata(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == ("GetModelMetadataRequest must specify at least one "
                                 "metadata_field")


def test_grpc_errors(server):
    stub, _ = grpc_stubs(server)

    def error(request):
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(request, timeout=10)
        return e.value.code(), e.value.details()

    assert error(predict_request({"text": TEXTS}, name="nope")) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")
    assert error(predict_request({"text": TEXTS}, version=1)) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(toy, 1)")
    assert error(predict_request({"text": TEXTS}, signature="nope")) == (
        grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')
    assert error(predict_request({"txt": TEXTS})) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input tensor alias not found in signature: txt. Inputs expected to be in the set "
        "{text}.")
    assert error(predict_request({"text": TEXTS, "txt": TEXTS})) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({text,txt}) != len({text}). "
        "Sent extra: {txt}. Missing but required: {}.")
    assert error(predict_request({"text": TEXTS}, signature="text_pair"))[1].endswith(
        "Sent extra: {}. Missing but required: {text_b}.")
    assert error(predict_request({"text": np.array([1.5, 2.5], np.float32)})) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be string but float is provided")
    assert error(predict_request({"input_word_ids": np.array([1, 2], np.int32)}, "encode"))[0] \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert error(predict_request({"text": TEXTS}, output_filter=["nope"])) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: nope Outputs expected to be in the set "
        "{label,logits,num_tokens,probabilities}.")
    assert error(predict_request({"text": ["x"] * (MAX_BATCH + 1)})) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}")
    code, details = error(predict_request({"text": ["x" * 1000] * MAX_BATCH * 3}))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details
    with pytest.raises(grpc.RpcError) as e:
        stub.Classify(classification_pb2.ClassificationRequest(), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # ... and the server still answers.
    assert stub.Predict(predict_request({"text": TEXTS}), timeout=10).model_spec.version.value == 2


def lying_request(dtype, shape, **values):
    """A PredictRequest whose one TensorProto declares `shape` but carries `values`."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    if dtype == tf.int32:
        request.model_spec.signature_name = "encode"
    proto = request.inputs["input_word_ids" if dtype == tf.int32 else "text"]
    proto.dtype = dtype.as_datatype_enum
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    for field, value in values.items():
        if field == "tensor_content":
            proto.tensor_content = value
        else:
            getattr(proto, field).extend(value)
    return request


def test_grpc_declared_shape_must_match_the_values(server):
    """issue 12 item 1: 30 bytes declaring a million strings were expanded to a million texts
    (20 GB, OOM). A shape that does not match the values is INVALID_ARGUMENT at once."""
    stub, _ = grpc_stubs(server)
    cases = [
        (lying_request(tf.string, [1000000], string_val=[b"x"]),
         "input tensor text: shape [1000000] needs 1000000 string_val values but the request "
         "carries 1"),
        (lying_request(tf.string, [2], string_val=[b"x", b"y", b"z"]),
         "input tensor text: shape [2] needs 2 string_val values but the request carries 3"),
        (lying_request(tf.int32, [100000, 100000], tensor_content=b"\0" * 8),
         "input tensor input_word_ids: shape [100000,100000] needs 40000000000 bytes of "
         "tensor_content but the request carries 8"),
        (lying_request(tf.int32, [1000, 1000], int_val=[7]),
         "input tensor input_word_ids: shape [1000,1000] needs 1000000 int_val values but the "
         "request carries 1"),
    ]
    assert len(cases[0][0].SerializeToString()) < 40
    for request, message in cases:
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(request, timeout=10)
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                        message)
        assert time.perf_counter() - start < 2.0
    honest = lying_request(tf.string, [2], string_val=[b"hello world", b"a"])
    assert stub.Predict(honest, timeout=10).outputs["label"].tensor_shape.dim[0].size == 2


def test_default_batch_cap_on_grpc_and_rest(models):
    """Without --max_batch_size the server still caps batches (DEFAULT_MAX_BATCH_SIZE), on
    TensorProtos and on both REST formats, before the values are converted."""
    from bert_tf.serving.server import DEFAULT_MAX_BATCH_SIZE

    s = ModelServer(models["base"], MODEL)
    assert s.manager.max_batch_size == DEFAULT_MAX_BATCH_SIZE == 1024
    s.manager.scan()
    servable = s.manager.get(predict_request({}).model_spec)
    too_many = ["x"] * (DEFAULT_MAX_BATCH_SIZE + 1)
    message = "Task size 1025 is larger than maximum input batch size 1024"
    with pytest.raises(Exception) as e:
        servable.predict("", {"text": tf.make_tensor_proto(too_many)})
    assert (e.value.code, e.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    for doc in ({"instances": too_many}, {"inputs": too_many}):
        assert s.rest_api.handle("POST", f"/v1/models/{MODEL}:predict",
                                 json.dumps(doc).encode()) == (400, {"error": message})
    assert servable.predict("", {"text": tf.constant(too_many[1:])})["label"].shape == (1024,)


def slow_servable(model_server, monkeypatch, delay=1.0) -> list:
    """Makes the served version take `delay` seconds to prepare each request (as if it waited
    for a worker or decoded a large request); returns the list of signatures it then ran."""
    servable = model_server.manager.get(predict_request({}).model_spec)
    ran = []
    prepare, run = servable.prepare, servable.run

    def slow_prepare(*args, **kwargs):
        time.sleep(delay)
        return prepare(*args, **kwargs)

    def counting_run(*args, **kwargs):
        ran.append(args[0])
        return run(*args, **kwargs)
    monkeypatch.setattr(servable, "prepare", slow_prepare)
    monkeypatch.setattr(servable, "run", counting_run)
    return ran


def test_grpc_work_past_its_deadline_is_not_started(server, monkeypatch):
    """issue 12 item 1: a request whose deadline passed while it waited is not run."""
    ran = slow_servable(server, monkeypatch)
    stub, _ = grpc_stubs(server)
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(predict_request({"text": TEXTS}), timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.5)
    assert ran == []
    stub.Predict(predict_request({"text": TEXTS}), timeout=10)
    assert ran == ["serving_default"]


def test_rest_request_whose_client_left_is_not_run(server, monkeypatch):
    """The REST twin of the deadline rule: a client that closed its connection while its
    request was being prepared gets no inference run for it."""
    ran = slow_servable(server, monkeypatch)
    body = json.dumps({"instances": TEXTS}).encode()
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(0.3)
    time.sleep(1.5)
    assert ran == []
    assert http("POST", f"{server.rest_url}/v1/models/{MODEL}:predict",
                {"instances": TEXTS})[0] == 200
    assert ran == ["serving_default"]


def test_text_pair_of_different_lengths_over_grpc(server):
    """issue 12 item 8: raw TF graph text before; a clear INVALID_ARGUMENT now."""
    stub, _ = grpc_stubs(server)
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(predict_request({"text": TEXTS[:2], "text_b": PAIRS_B[:3]}, "text_pair"),
                     timeout=10)
    assert (e.value.code(), e.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "the inputs of signature text_pair must have the same batch size (0th dimension), got "
        "text: 2, text_b: 3")


def test_rest_deep_json_and_bad_ports_are_input_errors(server):
    """100,000-deep JSON was an HTTP 500 (RecursionError); --port=-5 bound port 65531."""
    from bert_tf.errors import InputError

    deep = b'{"instances": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    assert server.rest_api.handle("POST", f"/v1/models/{MODEL}:predict", deep) == (
        400, {"error": "JSON Parse error: the document nests deeper than 64 levels"})
    for port in (-5, 65536):
        with pytest.raises(InputError, match=f"--port must be a TCP port 0..65535.*got {port}"):
            ModelServer(server.model_base_path, MODEL, grpc_port=port)
    with pytest.raises(InputError, match="--rest_api_port must be a TCP port"):
        ModelServer(server.model_base_path, MODEL, rest_port=-1)


# ----------------------------------------------------------------------------- REST
def test_rest_row_and_columnar_formats_match_in_process(server, reference):
    url = f"{server.rest_url}/v1/models/{MODEL}"
    want = reference("serving_default", text=TEXTS)

    status, reply = http("POST", url + ":predict", {"instances": TEXTS})
    assert status == 200
    assert len(reply["predictions"]) == len(TEXTS)
    for i, row in enumerate(reply["predictions"]):
        assert row["label"] == want["label"][i].decode()
        assert row["num_tokens"] == want["num_tokens"][i]
        np.testing.assert_array_equal(np.float32(row["probabilities"]), want["probabilities"][i])
        np.testing.assert_array_equal(np.float32(row["logits"]), want["logits"][i])

    status, reply = http("POST", url + "/versions/2:predict",
                         {"signature_name": "text_pair",
                          "instances": [{"text": a, "text_b": b} for a, b in zip(TEXTS, PAIRS_B)]})
    pair = reference("text_pair", text=TEXTS, text_b=PAIRS_B)
    assert status == 200
    assert [r["label"] for r in reply["predictions"]] == [x.decode() for x in pair["label"]]

    status, reply = http("POST", url + ":predict",
                         {"signature_name": "text_pair", "inputs": {"text": TEXTS,
                                                                    "text_b": PAIRS_B}})
    assert status == 200
    np.testing.assert_array_equal(np.float32(reply["outputs"]["logits"]), pair["logits"])
    assert reply["outputs"]["label"] == [x.decode() for x in pair["label"]]

    # Columnar, one input given bare; b64 strings; int32 matrix; a one-output signature.
    b64 = [{"b64": "aGVsbG8gd29ybGQ="}, "a"]  # "hello world"
    status, reply = http("POST", url + ":predict", {"inputs": b64})
    assert reply["outputs"]["label"] == [x.decode() for x in want["label"][:2]]
    status, reply = http("POST", url + ":predict", {"signature_name": "encode",
                                                    "instances": IDS})
    encoded = reference("encode", input_word_ids=np.array(IDS, np.int32))
    assert [r["total"] for r in reply["predictions"]] == encoded["total"].tolist()
    np.testing.assert_array_equal(np.float32([r["scaled"] for r in reply["predictions"]]),
                                  encoded["scaled"])
    upper = [x.decode() for x in reference("upper", text=TEXTS)["upper"]]  # ASCII-only upper
    status, reply = http("POST", url + ":predict", {"signature_name": "upper",
                                                    "instances": TEXTS})
    assert reply == {"predictions": upper}
    status, reply = http("POST", url + ":predict", {"signature_name": "upper", "inputs": TEXTS})
    assert reply == {"outputs": upper}


def test_rest_floats_are_written_as_tf_serving_does(server):
    # float32 values in their shortest round-trip form (0.6666667, not 0.6666666865348816).
    request = urllib.request.Request(
        f"{server.rest_url}/v1/models/{MODEL}:predict", method="POST",
        data=json.dumps({"signature_name": "encode", "inputs": [[2]]}).encode())
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read().decode()
    assert re.search(r'"scaled": \[\[1\.3333334\]\]', text), text


def test_rest_metadata(server):
    status, reply = http("GET", f"{server.rest_url}/v1/models/{MODEL}/metadata")
    assert status == 200
    assert reply["model_spec"] == {"name": MODEL, "signature_name": "", "version": "2"}
    defs = reply["metadata"]["signature_def"]["signature_def"]
    assert defs["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"
    assert defs["serving_default"]["outputs"]["label"]["dtype"] == "DT_STRING"
    assert defs["serving_default"]["outputs"]["num_tokens"]["dtype"] == "DT_INT64"
    assert defs["encode"]["inputs"]["input_word_ids"]["dtype"] == "DT_INT32"
    assert defs["text_pair"]["method_name"] == "tensorflow/serving/predict"
    assert http("GET", f"{server.rest_url}/v1/models/{MODEL}/versions/2/metadata")[1] == reply
    assert http("GET", f"{server.rest_url}/v1/models/{MODEL}/versions/9/metadata") == (
        404, {"error": "Servable not found for request: Specific(toy, 9)"})


REST_ERRORS = [
    # (path suffix, body bytes, HTTP status, error message or regex)
    (":predict", b'{"instances": [', 400, "JSON Parse error: Invalid value. at offset: 15"),
    (":predict", b"", 400, "JSON Parse error: The document is empty"),
    (":predict", b"[1, 2]", 400, "JSON Value: [1, 2] Is not object"),
    (":predict", b'{"instances": ["a"], "inputs": ["a"]}', 400,
     re.compile(r"Not formatted correctly expecting only one of 'inputs' or 'instances'")),
    (":predict", b'{"signature_name": "x"}', 400,
     'Serving signature name: "x" not found in signature def'),
    (":predict", b'{"signature_name": 3, "instances": ["a"]}', 400,
     re.compile(r"'signature_name' key must be a string value")),
    (":predict", b'{"instances": []}', 400, re.compile(r"No values in 'instances' array")),
    (":predict", b'{"foo": 1}', 400, "Missing 'inputs' or 'instances' key"),
    (":predict", b'{"instances": [{"txt": "a"}]}', 400,
     "Failed to process element: 0 key: txt of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON object: does not have named input: txt"),
    (":predict", b'{"inputs": {"txt": ["a"]}}', 400,
     "Missing named input: text in 'inputs' object."),
    (":predict", b'{"instances": [1, 2]}', 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 "
     "Type: Number is not of expected type: string"),
    (":predict", b'{"inputs": [1.5]}', 400,
     "JSON Value: 1.5 Type: Number is not of expected type: string"),
    (":predict", b'{"signature_name": "encode", "inputs": [[1.5]]}', 400,
     "JSON Value: 1.5 Type: Number is not of expected type: int32"),
    (":predict", b'{"signature_name": "encode", "instances": [[1, 2], [3]]}', 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
     "tensor size: 2 but got: 1"),
    (":predict", b'{"signature_name": "text_pair", "instances": [{"text": "a", "text_b": "b"}, '
     b'{"text": "c"}]}', 400,
     re.compile(r"Failed to process element: 1 of 'instances' list\. JSON object: .* keys must "
                r"be equal to: text,text_b")),
    (":predict", b'{"signature_name": "text_pair", "instances": ["a"]}', 400,
     "instances is a plain list, but expecting list of objects as multiple input tensors "
     "required as per tensorinfo_map"),
    (":predict", b'{"signature_name": "encode", "inputs": [1, 2]}', 400,
     re.compile(r"shape \[2\] is not compatible with the signature's shape \[\?,\?\]")),
    (":predict", b'{"inputs": [{"b64": "%%%"}]}', 400, "Unable to base64 decode"),
    (":predict", json.dumps({"instances": ["x"] * (MAX_BATCH + 1)}).encode(), 400,
     f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}"),
    (":predict", json.dumps({"instances": ["x" * 100] * 400}).encode(), 413,
     re.compile(r"Request body of \d+ bytes exceeds the server's limit of 32768 bytes")),
    ("/versions/1:predict", b'{"instances": ["a"]}', 404,
     "Servable not found for request: Specific(toy, 1)"),
    (":classify", b'{"examples": []}', 501, re.compile("classify is not implemented")),
    ("/bogus", b"{}", 400, "Malformed request: POST /v1/models/toy/bogus"),
    # issue 12 item 8: these were HTTP 500.
    (":predict", b'{"instances": ["ok \\ud800"]}', 400,
     re.compile(r"^JSON Parse error: Invalid encoding in string: a lone UTF-16 surrogate "
                r"\\ud800")),
    (":predict", b'{"inputs": {"text": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}}", 400,
     "JSON Parse error: the document nests deeper than 64 levels"),
    (":predict", b'{"signature_name": "text_pair", "inputs": {"text": ["a", "b"], '
     b'"text_b": ["c", "d", "e"]}}', 400,
     "the inputs of signature text_pair must have the same batch size (0th dimension), got "
     "text: 2, text_b: 3"),
]


@pytest.mark.parametrize("suffix, body, status, message", REST_ERRORS)
def test_rest_errors_then_a_good_request(server, suffix, body, status, message):
    got_status, reply = http("POST", f"{server.rest_url}/v1/models/{MODEL}{suffix}", raw=body)
    assert got_status == status
    assert list(reply) == ["error"]
    if isinstance(message, str):
        assert reply["error"] == message
    else:
        assert message.search(reply["error"]), reply["error"]
    good = http("POST", f"{server.rest_url}/v1/models/{MODEL}:predict", {"instances": ["ok"]})
    assert good[0] == 200 and len(good[1]["predictions"]) == 1


def test_rest_unknown_model_and_paths(server):
    assert http("POST", f"{server.rest_url}/v1/models/nope:predict", {"instances": ["a"]}) == (
        404, {"error": "Servable not found for request: Latest(nope)"})
    assert http("GET", f"{server.rest_url}/v1/models") == (
        400, {"error": "Missing model name in request."})
    assert http("GET", f"{server.rest_url}/elsewhere")[0] == 404


# ----------------------------------------------------------------------------- clients
def test_client_library_both_protocols(server, reference):
    want = reference("serving_default", text=TEXTS)
    for predict, address in ((client.predict_grpc, server.grpc_address),
                             (client.predict_rest, server.rest_url)):
        got = predict(address, MODEL, {"text": TEXTS})
        assert_same(got, want)
        assert {k: v.dtype for k, v in got.items()} == {k: v.dtype for k, v in want.items()}
        assert isinstance(got["label"][0], bytes)
        pair = predict(address, MODEL, {"text": TEXTS, "text_b": PAIRS_B}, "text_pair",
                       version=2)
        assert_same(pair, reference("text_pair", text=TEXTS, text_b=PAIRS_B))
        ids = np.array(IDS, np.int32)
        assert_same(predict(address, MODEL, {"input_word_ids": ids}, "encode"),
                    reference("encode", input_word_ids=ids))
        assert_same(predict(address, MODEL, {"text": TEXTS}, "upper"),
                    reference("upper", text=TEXTS))
        with pytest.raises(client.ServingError) as e:
            predict(address, MODEL, {"txt": TEXTS})
        assert "text" in e.value.message
        with pytest.raises(client.ServingError) as e:
            predict(address, "nope", {"text": TEXTS})
        assert e.value.message == "Servable not found for request: Latest(nope)"
    with pytest.raises(client.ServingError) as e:
        client.predict_rest("http://127.0.0.1:9", MODEL, {"text": TEXTS}, timeout=5)
    assert e.value.code == "UNAVAILABLE"


def test_concurrent_grpc_and_rest_clients(server, reference):
    inputs = [TEXTS[: i % len(TEXTS) + 1] for i in range(7)]
    wants = [reference("serving_default", text=t) for t in inputs]
    errors = []

    def worker(thread):
        try:
            for i in range(50):
                k = (thread + i) % len(inputs)
                if (thread + i) % 2:
                    got = client.predict_grpc(server.grpc_address, MODEL, {"text": inputs[k]})
                else:
                    got = client.predict_rest(server.rest_url, MODEL, {"text": inputs[k]})
                assert_same(got, wants[k])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert not any(t.is_alive() for t in threads)


def run_script(*args, timeout=120):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


SCRIPT_LINES = ["hello world", "a ||| yy yy", "the quick brown fox jumps ||| ", "ab"]


def expected_script_lines(reference):
    single = reference("serving_default", text=["hello world", "ab"])
    pairs = reference("text_pair", text=["a", "the quick brown fox jumps"], text_b=["yy yy", ""])

    def line(text, outputs, i):
        p = outputs["probabilities"][i]
        return (f"{text}\tlabel={outputs['label'][i].decode()} p={p.max():.4f} "
                f"probabilities=[{', '.join(f'{x:.4f}' for x in p)}]")
    return [line("hello world", single, 0), line("a ||| yy yy", pairs, 0),
            line("the quick brown fox jumps ||| ", pairs, 1), line("ab", single, 1)]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_serving_client_script(server, reference, tmp_path, protocol):
    (tmp_path / "in.txt").write_text("\n".join(SCRIPT_LINES) + "\n", encoding="utf-8")
    address = server.grpc_address if protocol == "grpc" else server.rest_url
    result = run_script("export/serving_client.py", f"--server={address}",
                        f"--protocol={protocol}", f"--model_name={MODEL}",
                        f"--input_file={tmp_path / 'in.txt'}", "--batch_size=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_script_lines(reference)


def test_serving_client_script_error(server):
    result = run_script("export/serving_client.py", f"--server={server.grpc_address}",
                        f"--model_name={MODEL}", "--text=abcd", "--signature_name=nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        'serving_client.py: error: FAILED_PRECONDITION: Serving signature key "nope" not found.')


def test_client_text_batches_and_formatting(server, reference):
    def predict(signature, inputs):
        return client.predict_grpc(server.grpc_address, MODEL, inputs, signature)

    shown = [(f"{a} ||| {b}" if b is not None else a, client.format_prediction(out))
             for a, b, out in client.predict_texts(predict, SCRIPT_LINES, batch_size=3)]
    assert ["\t".join(x) for x in shown] == expected_script_lines(reference)

    def lines(signature):
        return [client.format_prediction(out) for _, _, out in
                client.predict_texts(predict, ["abcd", "ab"], signature)]
    assert lines("regress") == ["score=0.571429", "score=0.285714"]
    assert lines("fill") == ["[MASK]@5 cat:0.7500 dog:0.2500 | [MASK]@7 the:0.5000 a:0.1250",
                             "[MASK]@3 cat:0.7500 dog:0.2500"]
    assert lines("upper") == ["upper[]", "upper[]"]
    assert client.split_pair(" x ||| y ") == ("x", "y")
    assert client.split_pair("x") == ("x", None)


def test_server_cli_subprocess_drains_on_sigterm(models):
    """python -m bert_tf.cli.serve serves; on SIGTERM it refuses new connections, finishes the
    request in flight (its body still arriving), says so and exits 0 (issue 12 item 2)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "bert_tf.cli.serve", f"--model_base_path={models['base']}",
         f"--model_name={MODEL}", "--port=0", "--rest_api_port=0", "--drain_seconds=20"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 120
        match = None
        while match is None and time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"version 2 .*gRPC on 127\.0\.0\.1:(\d+), REST on "
                              r"http://127\.0\.0\.1:(\d+)", line)
        assert match, "".join(lines)
        assert "Development model server" in match.string
        grpc_port, rest_port = match.groups()
        got = client.predict_grpc(f"127.0.0.1:{grpc_port}", MODEL, {"text": TEXTS[:2]})
        assert got["label"].shape == (2,)
        assert http("GET", f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}")[0] == 200

        body = json.dumps({"instances": TEXTS}).encode()
        in_flight = socket.create_connection(("127.0.0.1", int(rest_port)), timeout=30)
        in_flight.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        time.sleep(1.0)  # the server is reading the body: the request is in flight
        process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", int(rest_port)), timeout=5).close()
        in_flight.sendall(body[10:])
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = in_flight.recv(65536)
            if not chunk:
                break
            reply += chunk
        in_flight.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert len(json.loads(reply.split(b"\r\n\r\n", 1)[1])["predictions"]) == len(TEXTS)
        assert process.wait(timeout=30) == 0
        rest = process.stdout.read()
        assert "SIGTERM: no new requests" in rest, rest
        assert "server stopped (every request in flight finished)" in rest, rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_drain_finishes_grpc_in_flight_and_refuses_new(models, monkeypatch):
    """ModelServer.drain: the gRPC request in flight completes, a new one is refused."""
    s = ModelServer(models["base"], MODEL, rest_port=None).start()
    slow_servable(s, monkeypatch)
    address, results = s.grpc_address, []
    worker = threading.Thread(target=lambda: results.append(
        client.predict_grpc(address, MODEL, {"text": TEXTS}, timeout=30)))
    worker.start()
    time.sleep(0.5)
    start = time.monotonic()
    assert s.drain(grace=10) is True
    assert time.monotonic() - start < 5
    worker.join(timeout=10)
    assert len(results) == 1 and results[0]["label"].shape == (len(TEXTS),)
    with pytest.raises(client.ServingError) as e:
        client.predict_grpc(address, MODEL, {"text": TEXTS}, timeout=5)
    assert e.value.code == "UNAVAILABLE"


def test_server_cli_bad_path():
    result = run_script("-m", "bert_tf.cli.serve", "--model_base_path=/nonexistent/x",
                        f"--model_name={MODEL}")
    assert result.returncode == 2
    assert "serve.py: error: --model_base_path /nonexistent/x is not a directory" in result.stderr
    # --port=-5 used to bind port 65531 (issue 12 item 8).
    result = run_script("-m", "bert_tf.cli.serve", f"--model_base_path={REPO}",
                        f"--model_name={MODEL}", "--port=-5")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "serve.py: error: --port must be a TCP port 0..65535 (0: pick a free one), got -5")


@pytest.mark.parametrize("server_flag, message", [
    ("--server=foo:bar", "serving_client.py: error: --server=foo:bar: expected host:port, "
                         "e.g. localhost:8500 (a port 1..65535)"),
    ("--server=127.0.0.1:9", re.compile(r"^serving_client\.py: error: UNAVAILABLE: cannot reach "
                                        r"127\.0\.0\.1:9: .*Connection refused")),
])
def test_serving_client_bad_server_is_one_line(server_flag, message):
    """issue 12 item 6: a malformed or unreachable --server is one line and exit status 2."""
    result = run_script("export/serving_client.py", server_flag, "--model_name=m", "--text=x",
                        "--timeout=10")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert (message.search(line) if isinstance(message, re.Pattern) else line == message), line


def test_serving_client_does_not_import_tensorflow():
    """The client builds TF Serving's protos without TensorFlow's start-up; TensorFlow imported
    afterwards still works and reads the client's TensorProtos (and the client reads TF's)."""
    code = """
import sys, time
start = time.perf_counter()
import bert_tf.cli.serving_client
from bert_tf.serving import client, protos
apis = protos.serving_apis()
seconds = time.perf_counter() - start
assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")], "TF imported"
import numpy as np
ours = protos.make_tensor_proto(client._as_array(["a", "bé"]))
floats = protos.make_tensor_proto(np.array([[1.5, -2.0]], np.float32))
import tensorflow as tf
assert tf.make_ndarray(ours).tolist() == [b"a", "bé".encode()]
assert tf.make_ndarray(floats).tolist() == [[1.5, -2.0]]
request = apis.predict_pb2.PredictRequest()
request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.arange(6, dtype=np.int64).reshape(2, 3)))
assert protos.make_ndarray(request.inputs["x"]).tolist() == [[0, 1, 2], [3, 4, 5]]
assert protos.make_ndarray(tf.make_tensor_proto(0.5, shape=[3])).tolist() == [0.5] * 3
assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0
print(f"client start-up {seconds:.2f} s")
"""
    result = run_script("-c", code)
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())


def test_import_bert_tf_after_keras_registers_the_models():
    """The lazy top-level package keeps README's contract: with TensorFlow/Keras imported
    first, `import bert_tf` registers the Keras serializables (for keras.saving.load_model)."""
    code = """
import keras
import bert_tf
assert keras.saving.get_registered_object("bert_tf>BertPreprocessor") is not None
"""
    result = run_script("-c", code)
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())


# ----------------------------------------------------------------------------- a real export
def test_serves_an_exported_bert_classifier(tmp_path):
    """A tiny BERT classifier exported by bert_tf.serving.export (tf-text tokenization in the
    graph, warmup records replayed on load): served predictions equal in-process ones."""
    export = pytest.importorskip("bert_tf.serving.export")
    from google_ckpt import tiny_config

    from bert_tf import BertConfig
    from bert_tf.text.vocab import Vocab

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
             "good", "bad", "movie", "a", "was", ".", "!"]
    config = BertConfig.from_dict(tiny_config(vocab_size=len(vocab), max_position_embeddings=32))
    spec = export.ExportSpec("classifier", config, Vocab(vocab), max_seq_length=12,
                             labels=["neg", "pos"])
    path = export.export_saved_model(spec.serving_module(spec.build_model()), spec, tmp_path,
                                     "bert")
    loaded = tf.saved_model.load(path)
    texts = ["The cat sat on the mat.", "a good movie!", "", "bad bad bad " * 8]
    cases = [("serving_default", {"text": texts}),
             ("text_pair", {"text": texts, "text_b": texts[::-1]})]
    with ModelServer(os.path.dirname(path), "bert") as s:
        assert s.version == 1
        for signature, inputs in cases:
            want = {k: v.numpy() for k, v in loaded.signatures[signature](
                **{k: tf.constant(v) for k, v in inputs.items()}).items()}
            assert sorted(want) == ["label", "logits", "probabilities"]
            for got in (client.predict_grpc(s.grpc_address, "bert", inputs, signature),
                        client.predict_rest(s.rest_url, "bert", inputs, signature)):
                assert got["label"].tolist() == want["label"].tolist()
                for name in ("logits", "probabilities"):
                    assert got[name].dtype == np.float32
                    np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)


def test_port_in_use_is_an_error(models, server):
    with pytest.raises(OSError, match="cannot bind gRPC"):
        ModelServer(models["base"], MODEL, grpc_port=server.grpc_port, rest_port=None).start()
    with pytest.raises(OSError):
        ModelServer(models["base"], MODEL, grpc_port=None, rest_port=server.rest_port).start()
    reply = client.predict_rest(server.rest_url, MODEL, {"text": ["still up"]})
    assert reply["label"].shape == (1,)
