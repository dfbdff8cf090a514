"""bert_tf.pipeline for token classification (ner) and question answering: the results are the
serving modules' outputs (and so the exported SavedModel's), in HF's shapes; the input kinds and
their errors; the settings a run_squad output_dir or an export records."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import hf_ckpt
import bert_tf
from bert_tf import BertConfig, BertEncoder, BertPreprocessor
from bert_tf.checkpoints import load_google_checkpoint
from bert_tf.errors import InputError
from bert_tf.models import BertSpanQA, BertTokenClassifier
from bert_tf.pipelines import PipelineError
from bert_tf.serving.export import ExportSpec, export_saved_model
from bert_tf.serving.question_answering import QuestionAnsweringServingModule
from bert_tf.serving.token_classifier import TokenClassifierServingModule, predict_entities

CONFIG = google_ckpt.tiny_config()  # max_position_embeddings 40
TOKENS = hf_ckpt.vocab_tokens(CONFIG["vocab_size"])
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SEQ, STRIDE = 12, 4
TEXTS = ["The cat sat on the mat in Paris.",
         "",
         "A good movie, a bad movie! The dog runs fast.",
         "the capital of france is paris " * 4 + "the cat",   # several windows
         "Café à Paris, naïve dog."]
QA = dict(max_seq_length=24, doc_stride=5, max_query_length=6, max_answer_length=4)
QUESTIONS = ["What is the capital of France?", "Who sat on the mat?", "Is the movie good?",
             "Which dog runs fast?"]
CONTEXTS = ["Paris is the capital of France, a good city. " * 3,     # several windows
            "The cat sat on the mat.", "A bad movie.",
            "The dog runs fast, the cat sat on the mat in Paris."]


def _write_dir(directory, arrays, labels=None, run_info=None):
    google_ckpt.write_arrays_as_google_checkpoint(os.path.join(directory, "bert_model.ckpt"),
                                                  arrays)
    files = {"bert_config.json": [json.dumps(CONFIG)], "vocab.txt": TOKENS}
    if labels:
        files["labels.txt"] = labels
    if run_info:
        files["run_info.json"] = [json.dumps(run_info)]
    for name, lines in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write("".join(f"{line}\n" for line in lines))
    return directory


def _ner_arrays():
    arrays = google_ckpt.random_google_arrays(CONFIG, with_pretraining_heads=False,
                                              num_classifier_labels=len(LABELS), seed=7)
    # A random head is nearly uniform; scaled up it predicts clear entities.
    arrays["output_weights"] = arrays["output_weights"] * 200
    arrays["output_bias"] = np.array([1.0, 0, 0, 0, 0], np.float32)
    return arrays


def _qa_arrays():
    arrays = google_ckpt.random_google_arrays(CONFIG, with_pretraining_heads=False, seed=8)
    rng = np.random.RandomState(3)
    arrays["cls/squad/output_weights"] = rng.normal(0, 4.0, (2, CONFIG["hidden_size"])).astype(
        np.float32)
    arrays["cls/squad/output_bias"] = np.array([0.3, -0.2], np.float32)
    return arrays


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory):
    return _write_dir(str(tmp_path_factory.mktemp("ner")), _ner_arrays(), LABELS)


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory):
    return _write_dir(str(tmp_path_factory.mktemp("squad")), _qa_arrays())


@pytest.fixture(scope="module")
def ner(ner_dir):
    return bert_tf.pipeline("ner", ner_dir, max_seq_length=SEQ, doc_stride=STRIDE)


@pytest.fixture(scope="module")
def qa(qa_dir):
    return bert_tf.pipeline("question-answering", qa_dir, **QA)


@pytest.fixture(scope="module")
def ner_reference(ner_dir):
    model = BertTokenClassifier(BertEncoder(BertConfig.from_dict(CONFIG)), len(LABELS))
    load_google_checkpoint(model, ner_dir, optional_groups=("classifier",))
    preprocessor = BertPreprocessor(TOKENS, do_lower_case=True, seq_length=SEQ)
    return model, preprocessor, TokenClassifierServingModule(model, preprocessor, LABELS,
                                                             doc_stride=STRIDE)


def _qa_module(qa_dir, version_2_with_negative=False, null_score_diff_threshold=0.0):
    model = BertSpanQA(BertEncoder(BertConfig.from_dict(CONFIG)))
    load_google_checkpoint(model, qa_dir, optional_groups=("span_qa",))
    preprocessor = BertPreprocessor(TOKENS, do_lower_case=True, seq_length=QA["max_seq_length"])
    return QuestionAnsweringServingModule(
        model, preprocessor, doc_stride=QA["doc_stride"], max_query_length=QA["max_query_length"],
        max_answer_length=QA["max_answer_length"],
        version_2_with_negative=version_2_with_negative,
        null_score_diff_threshold=null_score_diff_threshold)


def _served_entities(out):
    return [[{"entity_group": out["entity_type"][i, j].numpy().decode(),
              "score": float(out["score"][i, j]),
              "word": out["entity_text"][i, j].numpy().decode(),
              "start": int(out["start"][i, j]), "end": int(out["end"][i, j])}
             for j in range(n)] for i, n in enumerate(out["num_entities"].numpy())]


def _served_answers(out):
    answers = []
    for i in range(out["answer"].shape[0]):
        answer = {"score": float(out["score"][i]), "start": int(out["start"][i]),
                  "end": int(out["end"][i]), "answer": out["answer"][i].numpy().decode()}
        if "null_score_diff" in out:
            answer["null_score_diff"] = float(out["null_score_diff"][i])
        answers.append(answer)
    return answers


# ----------------------------------------------------------------------------- ner
def test_ner_equals_the_serving_module_and_predict_entities(ner, ner_reference):
    model, preprocessor, module = ner_reference
    results = ner(TEXTS)
    served = _served_entities(module.serve_text(tf.constant(TEXTS)))
    assert results == served  # the same batch through the same graph: bit-exact
    assert sum(len(r) for r in results) >= 5 and results[3] and results[1] == []
    for text, entities in zip(TEXTS, results):
        for entity in entities:
            assert set(entity) == {"entity_group", "score", "word", "start", "end"}
            assert entity["word"] == text[entity["start"]:entity["end"]]
            assert entity["entity_group"] in ("LOC", "PER") and 0 < entity["score"] <= 1
    expected = predict_entities(model, preprocessor, LABELS, TEXTS, doc_stride=STRIDE)
    assert [[(e["entity_group"], e["word"], e["start"], e["end"]) for e in r] for r in results] \
        == [[(x.type, x.text, x.start, x.end) for x in row] for row in expected]
    np.testing.assert_allclose([e["score"] for r in results for e in r],
                               [x.score for row in expected for x in row], atol=1e-5)
    # Smaller batches and one text: the same entities.
    ner.batch_size = 2
    try:
        for got, want in zip(ner(TEXTS), results):
            assert [{**e, "score": 0} for e in got] == [{**e, "score": 0} for e in want]
            np.testing.assert_allclose([e["score"] for e in got], [e["score"] for e in want],
                                       atol=1e-6)
    finally:
        ner.batch_size = 32
    assert [e["word"] for e in ner(TEXTS[3])] == [e["word"] for e in results[3]]
    assert type(bert_tf.pipeline("token-classification", ner.pretrained)) is type(ner)


def test_ner_text_without_entities(ner):
    head = ner.pretrained.model.classifier
    trained = head.output_weights.numpy()
    head.output_weights.assign(np.zeros_like(trained))  # only the bias, which favours O
    try:
        assert ner(["The cat sat on the mat in Paris.", "", "   "]) == [[], [], []]
        assert ner("The dog runs fast.") == []
    finally:
        head.output_weights.assign(trained)


def test_ner_errors(ner, ner_dir, tmp_path):
    with pytest.raises(PipelineError, match="input 0: .*single texts"):
        ner(("the cat", "the dog"))
    with pytest.raises(PipelineError, match="input 1: .*got 3"):
        ner(["the cat", 3])
    with pytest.raises(PipelineError, match="got 5"):
        ner(5)
    with pytest.raises(PipelineError, match="takes no argument top_k"):
        bert_tf.pipeline("ner", ner_dir, top_k=3)
    with pytest.raises(PipelineError, match="aggregation_strategy must be 'first'"):
        bert_tf.pipeline("ner", ner_dir, aggregation_strategy="simple")
    bare = str(tmp_path / "bare")  # a pretrained checkpoint: no labels.txt
    google_ckpt.write_google_checkpoint(bare, CONFIG, seed=1, vocab_tokens=TOKENS)
    with pytest.raises(PipelineError, match="bare: a token classifier needs its IOB2 labels"):
        bert_tf.pipeline("ner", bare)
    hf_names = _write_dir(str(tmp_path / "not_iob2"), _ner_arrays(),
                          [f"LABEL_{i}" for i in range(len(LABELS))])
    with pytest.raises(InputError, match="not_iob2: the model's labels: .* lack 'O'"):
        bert_tf.pipeline("ner", hf_names)


# ----------------------------------------------------------------------------- qa
def test_qa_equals_the_serving_module(qa, qa_dir):
    module = _qa_module(qa_dir)  # held: a tf.function method keeps only a weak reference
    served = _served_answers(module.serve(tf.constant(QUESTIONS), tf.constant(CONTEXTS)))
    results = qa(question=QUESTIONS, context=CONTEXTS)
    assert results == served  # bit-exact: the same batch through the same graph
    for context, result in zip(CONTEXTS, results):
        assert set(result) == {"score", "start", "end", "answer"}
        assert result["answer"] and context[result["start"]:result["end"]] == result["answer"]
    assert len({r["answer"] for r in results}) > 1
    # HF's other input kinds, one input, and batches of 3 then 1.
    dicts = [{"question": q, "context": c} for q, c in zip(QUESTIONS, CONTEXTS)]
    qa.batch_size = 3
    try:
        for got in (qa(dicts), qa(list(zip(QUESTIONS, CONTEXTS)))):
            assert [{**r, "score": 0} for r in got] == [{**r, "score": 0} for r in results]
            np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in results],
                                       atol=1e-5)
    finally:
        qa.batch_size = 32
    one = qa(question=QUESTIONS[1], context=CONTEXTS[1])
    assert isinstance(one, dict) and one["answer"] == results[1]["answer"]
    assert qa(dicts[1])["answer"] == qa((QUESTIONS[1], CONTEXTS[1]))["answer"] == one["answer"]
    same_context = qa(question=QUESTIONS[:2], context=CONTEXTS[1])
    assert [r["answer"] for r in same_context] == [qa(question=q, context=CONTEXTS[1])["answer"]
                                                  for q in QUESTIONS[:2]]
    assert qa([]) == []


def test_qa_errors(qa, qa_dir):
    with pytest.raises(PipelineError, match="input 1: context is empty"):
        qa(question=["Who?", "Who?"], context=["The cat.", " "])
    with pytest.raises(PipelineError, match="input 0: question is empty"):
        qa({"question": "", "context": "The cat."})
    with pytest.raises(PipelineError, match="input 0: context must be a string, got None"):
        qa({"question": "Who?"})
    with pytest.raises(PipelineError, match="input 0: question must be a string, got 3"):
        qa(question=[3], context=["The cat."])
    with pytest.raises(PipelineError, match="expected a question string .*got 3"):
        qa(question=3, context="The cat.")
    with pytest.raises(PipelineError, match="input 0: expected .*pair, got 'Who is it'"):
        qa(["Who is it"])
    with pytest.raises(PipelineError, match="2 questions but 3 contexts"):
        qa(question=["a", "b"], context=["x", "y", "z"])
    with pytest.raises(PipelineError, match="question= and context="):
        qa(question="Who?")
    with pytest.raises(PipelineError, match="not both"):
        qa({"question": "Who?", "context": "x"}, context="y")
    with pytest.raises(PipelineError, match="takes no argument top_k"):
        bert_tf.pipeline("question-answering", qa_dir, top_k=2)
    with pytest.raises(InputError, match="max_query_length=30"):
        bert_tf.pipeline("question-answering", qa_dir, max_seq_length=24, max_query_length=30)


def test_qa_settings_from_run_info_and_v2_no_answer(tmp_path):
    """A run_squad v2 output_dir: run_info.json gives casing, max_seq_length, doc_stride,
    max_query_length and the SQuAD version; no answer is "" with start = end = -1."""
    run_info = {"task_name": "squad_v2", "do_lower_case": True, **QA}
    del run_info["max_answer_length"]  # not recorded by run_squad
    directory = _write_dir(str(tmp_path / "v2"), _qa_arrays(), run_info=run_info)
    loaded = bert_tf.from_pretrained(directory)
    assert loaded.task == "question_answering" and loaded.max_seq_length == 24
    assert loaded.settings == {"doc_stride": 5, "max_query_length": 6,
                               "version_2_with_negative": True}
    never, always = (bert_tf.pipeline("question-answering", directory, max_answer_length=4,
                                      null_score_diff_threshold=threshold)(
        question=QUESTIONS, context=CONTEXTS) for threshold in (-1e9, 1e9))
    module = _qa_module(directory, True, -1e9)
    assert never == _served_answers(module.serve(tf.constant(QUESTIONS),
                                                 tf.constant(CONTEXTS)))
    assert all(set(r) == {"score", "start", "end", "answer", "null_score_diff"}
               for r in never + always)
    assert all((r["answer"], r["start"], r["end"]) == ("", -1, -1) for r in never)
    assert all(r["answer"] for r in always)
    assert [r["null_score_diff"] for r in never] == [r["null_score_diff"] for r in always]
    # Without run_info: v1, and the model's max_position_embeddings caps run_squad's 384.
    plain = bert_tf.pipeline("question-answering", _write_dir(str(tmp_path / "v1"), _qa_arrays()),
                             max_query_length=6)
    assert plain.module.seq_length == CONFIG["max_position_embeddings"]
    assert plain.module.doc_stride == 128 and not plain.module.version_2_with_negative


# CI time: pipelines equal the serving modules in CI; exports equal run_squad's predictions in
# test_run_squad
@pytest.mark.slow
def test_exported_model_gives_the_pipeline_results(qa, qa_dir, tmp_path):
    """A SavedModel exported from the same weights: from_pretrained reads its task and
    settings, and the pipeline on it equals the loaded SavedModel's serving_default and the
    pipeline on the checkpoint."""
    source = bert_tf.from_pretrained(qa_dir, task="question_answering")
    spec = ExportSpec("question_answering", source.config, source.vocab, **QA)
    path = export_saved_model(spec.serving_module(source.model), spec, str(tmp_path), "qa")
    loaded = bert_tf.from_pretrained(path)
    assert (loaded.task, loaded.format, loaded.max_seq_length) == (
        "question_answering", "saved_model", QA["max_seq_length"])
    assert loaded.settings == {"doc_stride": 5, "max_query_length": 6, "max_answer_length": 4,
                               "version_2_with_negative": False,
                               "null_score_diff_threshold": 0.0}
    got = bert_tf.pipeline("question-answering", path)(question=QUESTIONS, context=CONTEXTS)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert got == _served_answers(signature(question=tf.constant(QUESTIONS),
                                            context=tf.constant(CONTEXTS)))
    want = qa(question=QUESTIONS, context=CONTEXTS)
    assert [{**r, "score": 0} for r in got] == [{**r, "score": 0} for r in want]
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in want], atol=1e-5)


# CI time: the predict command is in CI through test_pipelines' CLI test
@pytest.mark.slow
def test_predict_command_question_answering(qa, qa_dir):
    """`question ||| context` lines give {"question", "context", "result"} JSON lines."""
    flags = [f"--{name}={value}" for name, value in QA.items()]
    cmd = [sys.executable, "-m", "bert_tf.cli.predict", f"--model={qa_dir}",
           "--task=question-answering", *flags,
           f"--text={QUESTIONS[1]} ||| {CONTEXTS[1]}", f"--text={QUESTIONS[2]} ||| {CONTEXTS[2]}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    direct = qa(question=QUESTIONS[1:3], context=CONTEXTS[1:3])
    assert [(r["question"], r["context"]) for r in rows] == list(zip(QUESTIONS[1:3],
                                                                      CONTEXTS[1:3]))
    assert [r["result"]["answer"] for r in rows] == [r["answer"] for r in direct]
