"""bert_tf.serving.compare (and bert_tf.cli.compare): token-classification and question-answering
exports through the SavedModel in-process and a ModelServer over gRPC and REST; the per-kind
reading of predictions and numbers; text reading. (A classifier's comparison with TFLite runs in
test_demo_data and test_serving_embedding.)"""
import os
import subprocess
import sys

import numpy as np
import pytest

import serving_tasks
from bert_tf.errors import InputError
from bert_tf.serving import client
from bert_tf.serving.compare import Comparison, compare_paths, kind_of, read_texts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    return serving_tasks.export_ner(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    return serving_tasks.export_qa(str(tmp_path_factory.getbasetemp()))


def test_read_texts_splits_on_newline_only(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("one\x0ctwo\r\n\nthree\u2028four ||| five\x85six\n  \nseven".encode("utf-8"))
    assert read_texts(path) == ["one\x0ctwo", "three\u2028four ||| five\x85six", "seven"]


def test_ner_paths_agree_with_the_keras_model(ner):
    from bert_tf.serving.token_classifier import predict_entities

    texts = serving_tasks.NER_TEXTS
    result = compare_paths(ner.path, texts)
    assert result.paths == ["SavedModel", "gRPC", "REST"] and result.kind.name == "token_classifier"
    assert result.label_mismatches == {"gRPC": 0, "REST": 0}
    assert result.max_abs_diff == {"gRPC": 0.0, "REST": 0.0}
    # The SavedModel's entities are the Keras model's (training features, NumPy decoding).
    expected = predict_entities(ner.model, ner.spec.preprocessor(), serving_tasks.NER_LABELS,
                                texts, doc_stride=serving_tasks.NER_STRIDE)
    for path in result.paths:
        for text, outputs, want in zip(texts, result.outputs[path], expected):
            got = client.entities(outputs)
            assert [(t, y, s, e) for t, y, _, s, e in got] == [
                (x.text, x.type, x.start, x.end) for x in want]
            np.testing.assert_allclose([g[2] for g in got], [x.score for x in want], atol=1e-5)
            assert all(text[s:e] == t for t, _, _, s, e in got)
    # Entities in English, accented, Chinese text and past the first window of the long text.
    assert expected[0] and expected[2] and expected[3] and expected[4][-1].end > 120
    assert not expected[1]
    table = result.table(cell_width=400).splitlines()
    assert [c.strip() for c in table[0].split(" | ")][1:] == [
        "SavedModel: entities", "gRPC: entities", "REST: entities"]
    first = "; ".join(f"{x.text}/{x.type} {x.score:.4f} [{x.start}:{x.end}]"
                       for x in expected[0])
    assert first in table[2] and table[3].count("no entities") == 3
    assert table[-1] == ("max |difference| of the entity scores vs SavedModel: gRPC 0.00e+00, "
                         "REST 0.00e+00")


def test_qa_paths_agree(qa):
    lines = serving_tasks.qa_lines()
    result = compare_paths(qa.path, lines, batch_size=4)  # two batches: 4 contexts, then 2
    assert result.kind.name == "question_answering"
    assert result.label_mismatches == {"gRPC": 0, "REST": 0}
    assert result.max_abs_diff == {"gRPC": 0.0, "REST": 0.0}
    answers = [client.answer(out) for out in result.outputs["SavedModel"]]
    for line, found in zip(lines, answers):
        context = line.split(" ||| ", 1)[1]
        assert found.is_impossible == (found.start < 0)
        if found.start >= 0:
            assert context[found.start:found.end] == found.text != ""
    # Answered and no-answer questions, over contexts of one to several windows.
    assert any(a.is_impossible for a in answers) and sum(not a.is_impossible for a in answers) >= 2
    assert answers[4] == client.Answer("", -1, -1, 0.0, True, 0.0)  # the empty context
    table = result.table(text_width=30).splitlines()
    assert "SavedModel: answer" in table[0] and len(table) == 2 + len(lines) + 1
    assert table[-1].startswith("max |difference| of the scores (score, null_score_diff) vs "
                                "SavedModel: gRPC 0.00e+00")


def test_tflite_is_refused_for_ner_and_qa(ner, qa, tmp_path):
    for export in (ner, qa):
        with pytest.raises(InputError, match=rf"^--tflite_file={tmp_path}/m.tflite: a "
                                             rf"{export.spec.task} model has no TFLite "
                                             r"conversion \(export/export_tflite.py converts "
                                             r"classifier, encoder, embedding models"):
            compare_paths(export.path, ["a ||| b"], tflite_file=tmp_path / "m.tflite",
                          server=False)


def test_qa_lines_need_the_separator(qa):
    with pytest.raises(InputError, match=r"^text 2 \('no separator'\): a question-answering "
                                         r"model takes `question \|\|\| context` lines$"):
        compare_paths(qa.path, ["Who? ||| Paris.", "no separator"], server=False)


def _ner_out(*entities):
    """One text's token_classifier outputs, padded to 3 entities."""
    pad = [("", "", 0.0, -1, -1)] * (3 - len(entities))
    rows = list(entities) + pad
    return {"entity_text": np.array([r[0].encode() for r in rows], object),
            "entity_type": np.array([r[1].encode() for r in rows], object),
            "score": np.array([r[2] for r in rows], np.float32),
            "start": np.array([r[3] for r in rows], np.int32),
            "end": np.array([r[4] for r in rows], np.int32),
            "num_entities": np.array(len(entities), np.int32)}


def _qa_out(text, start, end, score, impossible=None, diff=None):
    out = {"answer": np.array(text.encode(), object), "start": np.array(start, np.int32),
           "end": np.array(end, np.int32), "score": np.array(score, np.float32)}
    if impossible is not None:
        out.update(is_impossible=np.array(impossible), null_score_diff=np.array(diff, np.float32))
    return out


def test_entity_mismatches_and_score_differences():
    paris = ("Paris", "LOC", 0.75, 0, 5)
    result = Comparison(["Paris is big.", "No names here.", "Ann met Bo."], {
        "SavedModel": [_ner_out(paris), _ner_out(), _ner_out(("Ann", "PER", 0.5, 0, 3))],
        "gRPC": [_ner_out(("Paris", "LOC", 0.7505, 0, 5)), _ner_out(),
                 _ner_out(("Ann", "PER", 0.5, 0, 3))],
        "REST": [_ner_out(("Paris", "PER", 0.75, 0, 5)), _ner_out(),      # another type
                 _ner_out(("Ann", "PER", 0.5, 0, 3), ("Bo", "PER", 0.9, 8, 10))],  # one more
        "other": [_ner_out(("Pari", "LOC", 0.75, 0, 4)), _ner_out(paris),  # span, spurious
                  _ner_out(("Ann", "PER", 0.5, 0, 3))],
    })
    assert result.kind.name == "token_classifier"
    assert result.label_mismatches == {"gRPC": 0, "REST": 2, "other": 2}
    # Texts with another entity count have no score difference (they are mismatches).
    assert result.max_abs_diff == {"gRPC": pytest.approx(5e-4, abs=1e-7), "REST": 0.0,
                                   "other": 0.0}
    table = result.table()
    assert "Paris/LOC 0.7500 [0:5]" in table and "Ann/PER 0.5000 [0:3]; Bo/PER 0.9000 [8:10]" \
        in table
    assert "no entities" in table
    assert result.disagreements(1e-3) == ["REST: 2 of 3 texts predicted otherwise",
                                          "other: 2 of 3 texts predicted otherwise"]
    assert result.disagreements(1e-4)[-1] == "gRPC: max |difference| 5.00e-04 > tolerance 0.0001"


def test_answer_mismatches_and_score_differences():
    result = Comparison(["Where? ||| In Paris.", "Who? ||| Nobody."], {
        "SavedModel": [_qa_out("Paris", 3, 8, 7.5, False, -2.0), _qa_out("", -1, -1, 1.0, True,
                                                                         3.0)],
        "gRPC": [_qa_out("Paris", 3, 8, 7.5, False, -2.0), _qa_out("", -1, -1, 1.0, True, 3.5)],
        "REST": [_qa_out("Paris", 2, 8, 7.5, False, -2.0),  # other offsets
                 _qa_out("Nobody", 0, 6, 1.0, False, 3.0)],  # answers where none
    })
    assert result.label_mismatches == {"gRPC": 0, "REST": 2}
    assert result.max_abs_diff == {"gRPC": 0.5, "REST": 0.0}
    table = result.table()
    assert "answer=Paris [3:8] score=7.5000 null_score_diff=-2.0000" in table
    assert "no answer null_score_diff=3.0000" in table
    # A SQuAD v1.1 model has no null_score_diff.
    v1 = Comparison(["Q? ||| C."], {"SavedModel": [_qa_out("C", 0, 1, 2.0)],
                                    "gRPC": [_qa_out("C", 0, 1, 2.25)]})
    assert v1.max_abs_diff == {"gRPC": 0.25} and v1.label_mismatches == {"gRPC": 0}
    assert client.format_answer(client.answer(_qa_out("", -1, -1, 0.0))) == "no answer"


def test_kinds_by_outputs():
    assert kind_of(["answer", "start", "end", "score", "is_impossible",
                    "null_score_diff"]).task == "question_answering"
    assert kind_of(_ner_out()).task == "token_classifier"
    assert kind_of(["label", "logits", "probabilities"]).name == "classifier"
    assert kind_of(["score"]).name == "regression" and kind_of(["score"]).task == "classifier"
    assert kind_of(["embedding"]).name == "embedding"
    with pytest.raises(InputError, match="compare handles question_answering, token_classifier, "
                                         "classifier, embedding, regression exports; this "
                                         "signature's outputs are masked_lm_positions, "
                                         "top_k_ids"):
        kind_of(["top_k_ids", "masked_lm_positions"])


def _compare_cli(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "bert_tf.cli.compare", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_compare_command_on_a_qa_export(qa, tmp_path):
    lines = serving_tasks.qa_lines()[:3]
    (tmp_path / "questions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The SavedModel alone (test_qa_paths_agree runs the server paths).
    done = _compare_cli(f"--saved_model_dir={qa.path}", f"--texts_file={tmp_path}/questions.txt",
                        "--noserver", "--tolerance=0")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[0].startswith("text") and out[0].endswith("| SavedModel: answer")
    assert len(out) == 2 + 3 and out[2].startswith(lines[0][:55])
    done = _compare_cli(f"--saved_model_dir={qa.path}", f"--text={lines[0]}", "--tolerance=-1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "compare.py: error: --tolerance must be a non-negative number, got -1.0")
