"""The serving client (bert_tf.serving.client, export/serving_client.py) with token-classification
(NER) and question-answering exports behind the development server: warmup records, signature
inputs from the metadata over gRPC and REST, `question ||| context` lines, and the printed
entities and answers, checked against the in-process SavedModel."""
import functools
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the exports' tf-text ops)

import serving_tasks
from bert_tf.errors import InputError
from bert_tf.serving import client
from bert_tf.serving.server import ModelServer
from bert_tf.serving.warmup import read_warmup_requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    export = serving_tasks.export_ner(str(tmp_path_factory.getbasetemp()))
    with ModelServer(export.base_path, "ner") as server:
        yield export, server


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    export = serving_tasks.export_qa(str(tmp_path_factory.getbasetemp()))
    with ModelServer(export.base_path, "qa") as server:
        yield export, server


@functools.cache
def _saved_model(path):
    return tf.saved_model.load(path)


def _in_process(path, batch_size, **inputs):
    """The SavedModel's outputs for `inputs` sent in batches of `batch_size` (a batch's windows
    are padded together: the same batches give the same float bits), one dict per example."""
    signature = _saved_model(path).signatures["serving_default"]
    size = len(next(iter(inputs.values())))
    examples = []
    for begin in range(0, size, batch_size):
        outputs = signature(**{k: tf.constant(v[begin:begin + batch_size])
                               for k, v in inputs.items()})
        examples += [{k: v[i].numpy() for k, v in outputs.items()}
                     for i in range(min(batch_size, size - begin))]
    return examples


def _expected_ner_lines(path, texts, batch_size):
    """The client's lines, written here from the SavedModel's outputs: each entity cut from
    its text by its offsets."""
    lines = []
    for text, out in zip(texts, _in_process(path, batch_size, text=texts)):
        found = [f"{text[s:e]}/{y.decode()} {p:.4f} [{s}:{e}]" for y, p, s, e in zip(
            out["entity_type"], out["score"], out["start"], out["end"])][:out["num_entities"]]
        lines.append(f"{text}\t{'; '.join(found) or 'no entities'}")
    return lines


def _expected_qa_lines(path, lines, batch_size):
    questions, contexts = zip(*(line.split(" ||| ", 1) for line in lines))
    expected = []
    for line, context, out in zip(lines, contexts, _in_process(
            path, batch_size, question=list(questions), context=list(contexts))):
        start, end = out["start"], out["end"]
        diff = f"null_score_diff={out['null_score_diff']:.4f}"
        shown = (f"no answer {diff}" if out["is_impossible"] else
                 f"answer={context[start:end]} [{start}:{end}] score={out['score']:.4f} {diff}")
        expected.append(f"{line}\t{shown}")
    return expected


@pytest.mark.parametrize("task", ["ner", "qa"])
def test_warmup_records_load_in_the_server(task, request):
    """The server replays the records when it loads a version and a failing replay fails the
    load: the version is AVAILABLE. The records are also valid requests over gRPC."""
    export, server = request.getfixturevalue(task)
    status = client.model_status_rest(server.rest_url, task)
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    records = read_warmup_requests(os.path.join(export.path, "assets.extra",
                                                "tf_serving_warmup_requests"))
    assert [len(r.predict_log.request.inputs["context" if task == "qa" else "text"]
                .string_val) for r in records] == [1, 2]
    for record in records:
        request = record.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        got = client.predict_grpc(server.grpc_address, task, inputs,
                                  request.model_spec.signature_name)
        assert len(got["start"]) == len(next(iter(inputs.values())))


def test_signature_inputs_from_the_metadata(ner, qa):
    for (export, server), inputs in ((ner, ["text"]), (qa, ["context", "question"])):
        name = os.path.basename(export.base_path)
        assert client.signature_inputs_grpc(server.grpc_address, name) == inputs
        assert client.signature_inputs_rest(server.rest_url, name, version=1) == inputs
        assert client.signature_inputs_grpc(server.grpc_address, name, "nope") is None
        assert client.signature_inputs_rest(server.rest_url, name, "nope") is None
    with pytest.raises(client.ServingError, match="Servable not found"):
        client.signature_inputs_grpc(ner[1].grpc_address, "qa")


def test_entities_over_grpc_and_rest(ner):
    export, server = ner
    texts = serving_tasks.NER_TEXTS
    want = {k: v.numpy() for k, v in _saved_model(export.path).signatures["serving_default"](
        text=tf.constant(texts)).items()}
    assert want["num_entities"][[0, 2, 3, 4]].min() >= 1  # English, accented, Chinese, long
    for predict, address in ((client.predict_grpc, server.grpc_address),
                             (client.predict_rest, server.rest_url)):
        got = predict(address, "ner", {"text": texts})
        assert sorted(got) == sorted(want)
        for name in want:
            assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        # A batch without entities: [B, 0] outputs.
        none = predict(address, "ner", {"text": ["", " "]})
        assert none["entity_text"].shape == (2, 0) and none["num_entities"].tolist() == [0, 0]


def test_predict_texts_formats_entities_and_answers(ner, qa):
    (ner_export, ner_server), (qa_export, qa_server) = ner, qa

    def lines(server, name, texts, batch_size):
        inputs = client.signature_inputs_grpc(server.grpc_address, name)
        return [f"{a if b is None else f'{a} ||| {b}'}\t{client.format_prediction(out)}"
                for a, b, out in client.predict_texts(
                    lambda sig, x: client.predict_grpc(server.grpc_address, name, x, sig),
                    texts, batch_size=batch_size, input_names=inputs)]

    texts = serving_tasks.NER_TEXTS
    assert lines(ner_server, "ner", texts, 4) == _expected_ner_lines(ner_export.path, texts, 4)
    qa_lines = serving_tasks.qa_lines()
    assert lines(qa_server, "qa", qa_lines, 4) == _expected_qa_lines(qa_export.path, qa_lines, 4)
    with pytest.raises(InputError, match=r"^text 2 \('Who\?'\): a question-answering model "
                                         r"takes `question \|\|\| context` lines$"):
        lines(qa_server, "qa", [qa_lines[0], "Who?"], 4)


def _client_script(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "export/serving_client.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_serving_client_script(ner, qa, protocol, tmp_path):
    for (export, server), texts, expected in (
            (ner, [t for t in serving_tasks.NER_TEXTS if t], _expected_ner_lines),
            (qa, serving_tasks.qa_lines(), _expected_qa_lines)):
        name = os.path.basename(export.base_path)
        (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        address = server.grpc_address if protocol == "grpc" else server.rest_url
        done = _client_script(f"--server={address}", f"--protocol={protocol}",
                              f"--model_name={name}", f"--input_file={tmp_path / 'in.txt'}",
                              "--batch_size=3")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == expected(export.path, texts, 3)


def test_serving_client_script_question_without_context(qa):
    _, server = qa
    done = _client_script(f"--server={server.grpc_address}", "--model_name=qa",
                          "--text=Where is Paris?")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "serving_client.py: error: text 1 ('Where is Paris?'): a question-answering model "
        "takes `question ||| context` lines"]
