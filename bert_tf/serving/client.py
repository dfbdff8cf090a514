"""Clients for TF Serving's Predict API over gRPC and REST (TF Serving or bert_tf.serving.server).

    >>> from bert_tf.serving.client import predict_grpc, predict_rest
    >>> predict_grpc("localhost:8500", "mrpc", {"text": ["a fine movie"]})  # doctest: +SKIP
    {'label': array([b'1'], dtype=object), 'logits': array(...), 'probabilities': array(...)}
    >>> predict_rest("http://localhost:8501", "mrpc", {"text": ["a fine movie"]})  # doctest: +SKIP

Both return `dict[str, numpy.ndarray]` with the same dtypes on both protocols: numbers in the
signature's dtype, strings as object arrays of `bytes` (as `tf.Tensor.numpy()` gives them).
Inputs are lists or NumPy arrays; over gRPC a list of `str` becomes a string tensor, of `int`
int32, of `float` float32 (pass NumPy arrays for other dtypes, and `np.array([], object)` for an
empty string batch); REST sends JSON, which the server converts by the signature.
Every failure (an error reply, an unreachable server, a timeout) raises `ServingError` with the
server's message. This module does not import TensorFlow (see `bert_tf.serving.protos`).

`signature_inputs_grpc` / `signature_inputs_rest` read a signature's input names from the model
metadata; `predict_texts` uses them to send a question-answering model's `question ||| context`
lines as its inputs `question` and `context`. `entities` and `answer` read one text's entities
(token_classifier exports) or answer (question_answering exports) from its outputs;
`format_prediction` prints any export's outputs as one line.
"""
from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from bert_tf.errors import InputError
from bert_tf.serving import protos

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TIMEOUT = 30.0
PAIR_SEPARATOR = "|||"
PAIR_SIGNATURE = "text_pair"
# The inputs of a question_answering export's signature (bert_tf.serving.question_answering).
QUESTION_CONTEXT = ("question", "context")


class ServingError(Exception):
    """A failed request: `message` is the server's error text; `code` the gRPC status name
    (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`, ...) and/or `http_status` (REST)."""

    def __init__(self, message: str, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status

    def __str__(self) -> str:
        where = self.code or (f"HTTP {self.http_status}" if self.http_status else None)
        return f"{where}: {self.message}" if where else self.message


# ----------------------------------------------------------------------------- gRPC
_channels: dict[str, Any] = {}
_channels_lock = threading.Lock()


def _channel(address: str):
    import grpc

    with _channels_lock:
        channel = _channels.get(address)
        if channel is None:
            channel = grpc.insecure_channel(address, options=[
                ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
            _channels[address] = channel
        return channel


def _as_array(value: Any) -> np.ndarray:
    """An input as a NumPy array: str/bytes → object array of bytes, Python int → int32,
    Python float → float32; NumPy arrays keep their dtype (unicode → bytes)."""
    given = isinstance(value, np.ndarray)
    array = np.asarray(value)
    if array.dtype.kind in "US" or array.dtype == object:
        flat = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in array.ravel()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    if not given and array.dtype == np.int64:
        return array.astype(np.int32)
    if not given and array.dtype == np.float64:
        return array.astype(np.float32)
    return array


def predict_grpc(address: str, model_name: str, inputs: Mapping[str, Sequence | np.ndarray],
                 signature_name: str = DEFAULT_SIGNATURE, version: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """PredictionService.Predict at `address` (`host:port`); returns the outputs by name."""
    apis = protos.serving_apis()
    request = apis.predict_pb2.PredictRequest()
    _model_spec(request.model_spec, model_name, version)
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        try:
            request.inputs[name].CopyFrom(protos.make_tensor_proto(_as_array(value)))
        except ValueError as e:
            raise ServingError(f"input {name}: {e}") from None
    request.output_filter.extend(output_filter)
    stub = apis.prediction_service_pb2_grpc.PredictionServiceStub(_channel(address))
    response = _grpc_call(stub.Predict, request, address, timeout)
    return {name: protos.make_ndarray(proto) for name, proto in response.outputs.items()}


def signature_inputs_grpc(address: str, model_name: str,
                          signature_name: str = DEFAULT_SIGNATURE, version: int | None = None,
                          timeout: float = DEFAULT_TIMEOUT) -> list[str] | None:
    """The input names (sorted) of a signature, from PredictionService.GetModelMetadata; None
    when the model has no such signature (a Predict call then gets the server's error)."""
    apis = protos.serving_apis()
    metadata = apis.get_model_metadata_pb2
    request = metadata.GetModelMetadataRequest(metadata_field=["signature_def"])
    _model_spec(request.model_spec, model_name, version)
    stub = apis.prediction_service_pb2_grpc.PredictionServiceStub(_channel(address))
    response = _grpc_call(stub.GetModelMetadata, request, address, timeout)
    signatures = metadata.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(signatures):
        raise ServingError(f"the metadata of model {model_name} at {address} has no "
                           "SignatureDefMap")
    name = signature_name or DEFAULT_SIGNATURE
    if name not in signatures.signature_def:
        return None
    return sorted(signatures.signature_def[name].inputs)


def _model_spec(spec, model_name: str, version: int | None) -> None:
    spec.name = model_name
    if version is not None:
        spec.version.value = int(version)


def _grpc_call(method, request, address: str, timeout: float):
    """`method(request)` of a stub; every gRPC failure becomes a ServingError."""
    import grpc

    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code()
        message = e.details() or str(e)
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"cannot reach {address}: {message}"
        raise ServingError(message, code=code.name) from None


# ----------------------------------------------------------------------------- REST
def _model_url(url: str, model_name: str, version: int | None) -> str:
    url = url if "://" in url else f"http://{url}"
    out = f"{url.rstrip('/')}/v1/models/{urllib.parse.quote(model_name, safe='')}"
    return out if version is None else f"{out}/versions/{int(version)}"


def _http(method: str, url: str, body: dict | None, timeout: float) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", errors="replace")
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text or e.reason
        raise ServingError(str(message), http_status=e.code) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        code = "DEADLINE_EXCEEDED" if isinstance(reason, TimeoutError) else "UNAVAILABLE"
        raise ServingError(f"cannot reach {url}: {reason}", code=code) from None
    except ValueError as e:
        raise ServingError(f"{url} answered with malformed JSON: {e}") from None


def model_metadata_rest(url: str, model_name: str, version: int | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """`GET /v1/models/<name>[/versions/<v>]/metadata` (the JSON TF Serving returns)."""
    return _http("GET", _model_url(url, model_name, version) + "/metadata", None, timeout)


def model_status_rest(url: str, model_name: str, version: int | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """`GET /v1/models/<name>[/versions/<v>]` (the model_version_status JSON)."""
    return _http("GET", _model_url(url, model_name, version), None, timeout)


def _json_input(value: Any) -> Any:
    """A NumPy array / list as JSON: bytes as UTF-8 text, or {"b64": ...} when not UTF-8."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_input(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _string_leaf(value: Any) -> bytes:
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    return str(value).encode("utf-8")


def _from_json(value: Any, dtype_name: str | None) -> np.ndarray:
    """A JSON output as an array of the signature's dtype (`DT_FLOAT`, ...; None: inferred)."""
    if dtype_name == "DT_STRING" or (dtype_name is None and _is_string_leaf(_first_leaf(value))):
        flat: list[bytes] = []

        def walk(v):
            if isinstance(v, list):
                for x in v:
                    walk(x)
            else:
                flat.append(_string_leaf(v))
        walk(value)
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(nested_shape(value))
    if dtype_name:
        try:
            dtype = protos.dtype_by_name(dtype_name)
        except ValueError as e:
            raise ServingError(str(e)) from None
        return np.asarray(value, dtype=dtype)
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _first_leaf(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _is_string_leaf(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and set(value) == {"b64"})


def nested_shape(value: Any) -> list[int]:
    """The shape of a JSON nested list, read along its first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _outputs_match(outputs: Any, dtypes: Mapping[str, str]) -> bool:
    """Whether a columnar reply has the shape of a signature with outputs `dtypes`: a bare
    value for one output, an object keyed by the output names otherwise."""
    if len(dtypes) == 1:
        return not isinstance(outputs, dict) or _is_string_leaf(outputs)
    return isinstance(outputs, dict) and set(outputs) == set(dtypes)


_signature_cache: dict[tuple, dict[str, Any] | None] = {}
_signature_lock = threading.Lock()


def _signature_rest(url: str, model_name: str, version: int | None, signature_name: str,
                    timeout: float, refresh: bool = False) -> dict[str, Any] | None:
    """A signature's JSON (`inputs`, `outputs`, ...) from the model's metadata (cached); None
    when the model has no such signature."""
    key = (url, model_name, version, signature_name or DEFAULT_SIGNATURE)
    with _signature_lock:
        if not refresh and key in _signature_cache:
            return _signature_cache[key]
    metadata = model_metadata_rest(url, model_name, version, timeout)
    signatures = metadata.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    signature = signatures.get(key[-1])
    with _signature_lock:
        _signature_cache[key] = signature
    return signature


def _output_dtypes(url: str, model_name: str, version: int | None, signature_name: str,
                   timeout: float, refresh: bool = False) -> dict[str, str]:
    """{output name: DT_* name} of a signature, from the model's metadata (cached)."""
    signature = _signature_rest(url, model_name, version, signature_name, timeout, refresh)
    outputs = (signature or {}).get("outputs", {})
    return {name: info.get("dtype") for name, info in outputs.items()}


def signature_inputs_rest(url: str, model_name: str, signature_name: str = DEFAULT_SIGNATURE,
                          version: int | None = None,
                          timeout: float = DEFAULT_TIMEOUT) -> list[str] | None:
    """The input names (sorted) of a signature, from `GET .../metadata` (cached with what
    `predict_rest` reads); None when the model has no such signature."""
    signature = _signature_rest(url, model_name, version, signature_name, timeout)
    return None if signature is None else sorted(signature.get("inputs", {}))


def predict_rest(url: str, model_name: str, inputs: Mapping[str, Sequence | np.ndarray],
                 signature_name: str = DEFAULT_SIGNATURE, version: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> dict[str, np.ndarray]:
    """`POST /v1/models/<name>[/versions/<v>]:predict` at `url` (`http://host:port`) with the
    columnar `inputs` form; returns the outputs by name, typed by the signature (its metadata
    is fetched once per url/model/version/signature and cached)."""
    body = {"signature_name": signature_name,
            "inputs": {name: _json_input(value) for name, value in inputs.items()}}
    reply = _http("POST", _model_url(url, model_name, version) + ":predict", body, timeout)
    if "outputs" not in reply:
        raise ServingError(f"reply without 'outputs': {str(reply)[:200]}")
    outputs = reply["outputs"]
    dtypes = _output_dtypes(url, model_name, version, signature_name, timeout)
    if not _outputs_match(outputs, dtypes):
        # Another version (other outputs) may be served now: refresh the signature once.
        dtypes = _output_dtypes(url, model_name, version, signature_name, timeout, refresh=True)
    if len(dtypes) == 1:
        outputs = {next(iter(dtypes)): outputs}
    elif not _outputs_match(outputs, dtypes):
        raise ServingError(f"the reply's outputs do not match signature {signature_name!r} "
                           f"(outputs {sorted(dtypes)})")
    return {name: _from_json(value, dtypes.get(name)) for name, value in outputs.items()}


# ----------------------------------------------------------------------------- texts
def split_pair(line: str) -> tuple[str, str | None]:
    """`text_a ||| text_b` → (text_a, text_b); a single text → (text, None)."""
    if PAIR_SEPARATOR in line:
        a, b = line.split(PAIR_SEPARATOR, 1)
        return a.strip(), b.strip()
    return line, None


def predict_texts(predict: Callable[[str, dict[str, list[str]]], Mapping[str, np.ndarray]],
                  lines: Iterable[str], signature_name: str = DEFAULT_SIGNATURE,
                  batch_size: int = 32, input_names: Sequence[str] | None = None
                  ) -> Iterator[tuple[str, str | None, dict[str, np.ndarray]]]:
    """Runs texts through `predict(signature, inputs)` (e.g. a partial of predict_grpc) in
    batches, in order, and yields (text, text_b or None, that example's outputs).

    Single texts go to `signature_name` as input `text`, `a ||| b` lines to the pair signature
    `text_pair` as inputs `text`, `text_b`. When `input_names` (the inputs of `signature_name`,
    from `signature_inputs_grpc` / `signature_inputs_rest` or the SavedModel) are `question`
    and `context`, a question_answering export's, every line is `question ||| context` and goes
    to `signature_name` as those inputs; a line without `|||` raises InputError.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    items = [split_pair(line) for line in lines]
    question_answering = input_names is not None and set(input_names) == set(QUESTION_CONTEXT)
    if question_answering:
        for number, (question, context) in enumerate(items, 1):
            if context is None:
                raise InputError(f"text {number} ({question[:40]!r}): a question-answering "
                                 f"model takes `question {PAIR_SEPARATOR} context` lines")
    start = 0
    while start < len(items):  # batches of consecutive texts of the same kind
        pair = items[start][1] is not None
        end = start
        while (end < len(items) and end - start < batch_size
               and (items[end][1] is not None) == pair):
            end += 1
        batch = items[start:end]
        if question_answering:
            signature, names = signature_name, QUESTION_CONTEXT
        elif pair:
            signature, names = PAIR_SIGNATURE, ("text", "text_b")
        else:
            signature, names = signature_name, ("text",)
        inputs = {names[0]: [a for a, _ in batch]}
        if len(names) > 1:
            inputs[names[1]] = [b for _, b in batch]
        outputs = predict(signature, inputs)
        for i, (a, b) in enumerate(batch):
            yield a, b, {name: np.asarray(value[i]) if value.ndim and value.shape[0] == len(batch)
                         else value for name, value in outputs.items()}
        start = end


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def entities(outputs: Mapping[str, np.ndarray]) -> list[tuple[str, str, float, int, int]]:
    """One text's entities from a token_classifier export's outputs for that text
    (`entity_text`, `entity_type`, `score`, `start`, `end` [E], `num_entities` []): per entity
    (text, type, score, start, end), the fields of `bert_tf.serving.token_classifier.Entity` in
    its order; the padding after `num_entities` is dropped."""
    count = int(np.ravel(outputs["num_entities"])[0])
    columns = [np.ravel(outputs[name])[:count]
               for name in ("entity_text", "entity_type", "score", "start", "end")]
    return [(_text(text), _text(entity_type), float(score), int(start), int(end))
            for text, entity_type, score, start, end in zip(*columns)]


class Answer(NamedTuple):
    """One question's answer from a question_answering export's outputs: `context[start:end]`
    (code points) is `text`; "" and -1, -1 for no answer. `is_impossible` and
    `null_score_diff` are None for a SQuAD v1.1 model (it has no such outputs)."""

    text: str
    start: int
    end: int
    score: float
    is_impossible: bool | None = None
    null_score_diff: float | None = None


def answer(outputs: Mapping[str, np.ndarray]) -> Answer:
    """The `Answer` in a question_answering export's outputs for one question."""
    def scalar(name):
        return np.ravel(outputs[name])[0] if name in outputs else None

    impossible, diff = scalar("is_impossible"), scalar("null_score_diff")
    return Answer(_text(scalar("answer")), int(scalar("start")), int(scalar("end")),
                  float(scalar("score")), None if impossible is None else bool(impossible),
                  None if diff is None else float(diff))


def format_entities(found: Sequence[tuple[str, str, float, int, int]]) -> str:
    """`text/TYPE score [start:end]` per entity, joined by `; `; `no entities` for none."""
    return "; ".join(f"{text}/{entity_type} {score:.4f} [{start}:{end}]"
                     for text, entity_type, score, start, end in found) or "no entities"


def format_answer(found: Answer) -> str:
    """`answer=<text> [start:end] score=<s>`, or `no answer`; v2 models add null_score_diff."""
    diff = "" if found.null_score_diff is None else f" null_score_diff={found.null_score_diff:.4f}"
    if found.start < 0:
        return "no answer" + diff
    return f"answer={found.text} [{found.start}:{found.end}] score={found.score:.4f}{diff}"


def format_prediction(outputs: Mapping[str, np.ndarray]) -> str:
    """One example's outputs as one line: the entities of a token classifier
    (`format_entities`); the answer of a question-answering model (`format_answer`); `label`,
    its probability and all probabilities for a classifier; `score` for regression; per [MASK]
    (padding, position -1, skipped) its position and top tokens with scores for a masked LM;
    otherwise output names with shapes."""
    if "entity_type" in outputs and "num_entities" in outputs:
        return format_entities(entities(outputs))
    if "answer" in outputs and "start" in outputs:
        return format_answer(answer(outputs))
    if "label" in outputs and "probabilities" in outputs:
        probabilities = [float(p) for p in np.ravel(outputs["probabilities"])]
        return (f"label={_text(np.ravel(outputs['label'])[0])} p={max(probabilities):.4f} "
                f"probabilities=[{', '.join(f'{p:.4f}' for p in probabilities)}]")
    if "score" in outputs:
        return f"score={float(np.ravel(outputs['score'])[0]):.6g}"
    if "top_k_tokens" in outputs and "top_k_scores" in outputs:
        tokens = np.asarray(outputs["top_k_tokens"])
        scores = np.asarray(outputs["top_k_scores"])
        positions = outputs.get("masked_lm_positions")
        masks = []
        for m in range(tokens.shape[0]):
            if positions is not None and int(positions[m]) < 0:
                continue
            where = f"@{int(positions[m])}" if positions is not None else f"#{m}"
            best = " ".join(f"{_text(t)}:{float(p):.4f}" for t, p in zip(tokens[m], scores[m]))
            masks.append(f"[MASK]{where} {best}")
        return " | ".join(masks) if masks else "no [MASK]"
    return " ".join(f"{name}{list(np.shape(value))}" for name, value in sorted(outputs.items()))


__all__ = ["Answer", "DEFAULT_SIGNATURE", "PAIR_SEPARATOR", "PAIR_SIGNATURE", "QUESTION_CONTEXT",
           "ServingError", "answer", "entities", "format_answer", "format_entities",
           "format_prediction", "model_metadata_rest", "model_status_rest", "predict_grpc",
           "predict_rest", "predict_texts", "signature_inputs_grpc", "signature_inputs_rest",
           "split_pair"]
