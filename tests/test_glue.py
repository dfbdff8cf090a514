"""GLUE/XNLI processors and metrics: small hand-written fixtures copying the real layouts, the
real GLUE files when ../shared/data is present, and hand-computed metric values."""
import math
import os
import re

import numpy as np
import pytest

from bert_tf.data import glue
from bert_tf.data.glue import (submission_label, CsvProcessor, InputExample, MnliProcessor, PROCESSORS,
                               TsvProcessor, XnliProcessor, get_processor, read_tsv)
from bert_tf.data.metrics import (accuracy, f1_score, glue_metrics, matthews_corrcoef, pearson,
                                  rankdata, spearman)
from shared_data import GLUE

BOM = "\ufeff"


def write(path, lines, bom=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write((BOM if bom else "") + "".join(line + "\n" for line in lines))


def tsv(*cols):
    return "\t".join(cols)


def ex(guid, a, b, label):
    return InputExample(guid, a, b, label)


# --------------------------------------------------------------------------------- fixtures
MRPC_HEADER = tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")


def test_mrpc_fixture_bom_and_literal_quotes(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.tsv", [MRPC_HEADER,
                             tsv("1", "702876", "702977", 'He said "the witness", ok.',
                                 'Referring to "the witness".'),
                             tsv("0", "2108705", "2108831", '"Unbalanced quote', "B two")],
          bom=True)
    write(f"{d}/dev.tsv", [MRPC_HEADER, tsv("0", "1", "2", "dev a", "dev b")], bom=True)
    write(f"{d}/test.tsv", [tsv("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                            tsv("0", "1089874", "1089925", "test a", "test b")])
    p = get_processor("MRPC")
    # The files' 0/1 are read as MRPC's label names (labels.txt, predictions, exports).
    assert p.get_labels() == ["not_equivalent", "equivalent"] and not p.is_regression
    assert p.get_train_examples(d) == [
        ex("train-1", 'He said "the witness", ok.', 'Referring to "the witness".', "equivalent"),
        ex("train-2", '"Unbalanced quote', "B two", "not_equivalent")]
    assert p.get_dev_examples(d) == [ex("dev-1", "dev a", "dev b", "not_equivalent")]
    assert p.get_test_examples(d) == [ex("test-1", "test a", "test b", "not_equivalent")]
    write(f"{d}/dev.tsv", [MRPC_HEADER, tsv("equivalent", "1", "2", "dev a", "dev b")])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2: label 'equivalent' is not one of "
                                         r"\['0', '1'\]"):
        p.get_dev_examples(d)


@pytest.mark.parametrize("task,names", [
    ("cola", ["unacceptable", "acceptable"]), ("sst-2", ["negative", "positive"]),
    ("mrpc", ["not_equivalent", "equivalent"]), ("qqp", ["not_duplicate", "duplicate"]),
    ("wnli", ["not_entailment", "entailment"])])
def test_glue_label_names_and_submission_values(task, names):
    assert get_processor(task).get_labels() == names
    assert [submission_label(task.upper(), n) for n in names] == ["0", "1"]


def test_submission_keeps_labels_of_tasks_without_numeric_files():
    assert submission_label("rte", "not_entailment") == "not_entailment"
    assert submission_label("mnli", "neutral") == "neutral"
    assert submission_label("tsv", "spam") == "spam"


def test_read_tsv_strips_bom_only_at_start(tmp_path):
    path = str(tmp_path / "f.tsv")
    write(path, [tsv("a", "b"), tsv("c", "d")], bom=True)
    assert read_tsv(path) == [(1, ["a", "b"]), (2, ["c", "d"])]


def test_cola_fixture(tmp_path):
    d = str(tmp_path)
    rows = [tsv("gj04", "1", "", "The sailors rode the breeze."),
            tsv("gj04", "0", "*", "The weights made rope stretch over.")]
    write(f"{d}/train.tsv", rows)
    write(f"{d}/dev.tsv", rows[:1])
    write(f"{d}/test.tsv", [tsv("index", "sentence"), tsv("0", "Bill whistled past the house."),
                            tsv("1", "The car honked.")])
    p = get_processor("cola")
    assert p.get_train_examples(d) == [ex("train-0", "The sailors rode the breeze.", None,
                                          "acceptable"),
                                       ex("train-1", "The weights made rope stretch over.", None,
                                          "unacceptable")]
    assert p.get_dev_examples(d) == [ex("dev-0", "The sailors rode the breeze.", None,
                                        "acceptable")]
    assert p.get_test_examples(d) == [
        ex("test-1", "Bill whistled past the house.", None, "unacceptable"),
        ex("test-2", "The car honked.", None, "unacceptable")]


def test_sst2_fixture(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.tsv", [tsv("sentence", "label"), tsv("a charming journey . ", "1"),
                             tsv("bleak ", "0")])
    write(f"{d}/dev.tsv", [tsv("sentence", "label"), tsv("it 's fine ", "1")])
    write(f"{d}/test.tsv", [tsv("index", "sentence"), tsv("0", "uneasy mishmash")])
    p = get_processor("sst2")
    assert p.get_train_examples(d) == [ex("train-1", "a charming journey . ", None, "positive"),
                                       ex("train-2", "bleak ", None, "negative")]
    assert p.get_dev_examples(d) == [ex("dev-1", "it 's fine ", None, "positive")]
    assert p.get_test_examples(d) == [ex("test-1", "uneasy mishmash", None, "negative")]


STSB_HEADER = tsv("index", "genre", "filename", "year", "old_index", "source1", "source2",
                  "sentence1", "sentence2", "score")


def test_stsb_fixture_regression(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.tsv", [STSB_HEADER,
                             tsv("0", "main-captions", "MSRvid", "2012test", "0001", "none",
                                 "none", "A plane is taking off.", "An air plane is taking off.",
                                 "5.000"),
                             tsv("1", "main-news", "MSRvid", "2012test", "0004", "none", "none",
                                 "A man plays.", "A man plays a flute.", "3.800")])
    write(f"{d}/dev.tsv", [STSB_HEADER, tsv("7", "g", "f", "y", "o", "s", "s", "x", "y", "0.5")])
    write(f"{d}/test.tsv", [tsv(*STSB_HEADER.split("\t")[:9]),
                            tsv("0", "g", "f", "y", "o", "s", "s", "t a", "t b")])
    p = get_processor("sts-b")
    assert p.is_regression and p.get_labels() == []
    assert p.get_train_examples(d) == [
        ex("train-0", "A plane is taking off.", "An air plane is taking off.", 5.0),
        ex("train-1", "A man plays.", "A man plays a flute.", 3.8)]
    assert p.get_dev_examples(d) == [ex("dev-7", "x", "y", 0.5)]
    test = p.get_test_examples(d)
    assert test == [ex("test-0", "t a", "t b", 0.0)] and isinstance(test[0].label, float)
    write(f"{d}/dev.tsv", [STSB_HEADER, tsv("7", "g", "f", "y", "o", "s", "s", "x", "y", "high")])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2.*'high'"):
        p.get_dev_examples(d)


def test_qqp_fixture(tmp_path):
    d = str(tmp_path)
    h = tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    write(f"{d}/train.tsv", [h, tsv("133273", "213221", "213222", "How is X?", "What is X?",
                                    "0")])
    write(f"{d}/dev.tsv", [h, tsv("5", "1", "2", "q1?", "q2?", "1")])
    write(f"{d}/test.tsv", [tsv("id", "question1", "question2"), tsv("0", "t1?", "t2?")])
    p = get_processor("qqp")
    assert p.get_train_examples(d) == [ex("train-133273", "How is X?", "What is X?",
                                          "not_duplicate")]
    assert p.get_dev_examples(d) == [ex("dev-5", "q1?", "q2?", "duplicate")]
    assert p.get_test_examples(d) == [ex("test-0", "t1?", "t2?", "not_duplicate")]


def _mnli_row(idx, s1, s2, label=None, n_extra_labels=1):
    cols = [idx, "31193", "31193n", "government", "( ( bp ) )", "( ( bp2 ) )", "(ROOT p)",
            "(ROOT p2)", s1, s2]
    if label is not None:
        cols += ["neutral"] * n_extra_labels + [label]
    return tsv(*cols)


def test_mnli_matched_and_mismatched(tmp_path):
    d = str(tmp_path)
    head_train = tsv("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                     "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                     "sentence2", "label1", "gold_label")
    write(f"{d}/train.tsv", [head_train, _mnli_row("0", "Premise.", "Hypo.", "neutral")])
    head_dev = head_train.replace("label1", "\t".join(f"label{i}" for i in range(1, 6)))
    write(f"{d}/dev_matched.tsv", [head_dev, _mnli_row("0", "M p", "M h", "entailment", 5)])
    write(f"{d}/dev_mismatched.tsv", [head_dev, _mnli_row("0", "MM p", "MM h",
                                                          "contradiction", 5)])
    head_test = "\t".join(head_train.split("\t")[:10])
    write(f"{d}/test_matched.tsv", [head_test, _mnli_row("9", "T p", "T h")])
    write(f"{d}/test_mismatched.tsv", [head_test, _mnli_row("8", "TM p", "TM h")])
    m = get_processor("mnli")
    assert m.get_labels() == ["contradiction", "entailment", "neutral"]
    assert m.get_train_examples(d) == [ex("train-0", "Premise.", "Hypo.", "neutral")]
    assert m.get_dev_examples(d) == [ex("dev-0", "M p", "M h", "entailment")]
    assert m.get_test_examples(d) == [ex("test-9", "T p", "T h", "contradiction")]
    for mm in (get_processor("mnli-mm"), MnliProcessor(matched=False),
               get_processor("mnli", matched=False)):
        assert mm.get_dev_examples(d) == [ex("dev-0", "MM p", "MM h", "contradiction")]
        assert mm.get_test_examples(d) == [ex("test-8", "TM p", "TM h", "contradiction")]


@pytest.mark.parametrize("task,values,labels", [
    ("qnli", ["entailment", "not_entailment"], ["entailment", "not_entailment"]),
    ("rte", ["entailment", "not_entailment"], ["entailment", "not_entailment"]),
    ("wnli", ["0", "1"], ["not_entailment", "entailment"])])
def test_pair_tasks_fixture(tmp_path, task, values, labels):
    d = str(tmp_path)
    h = tsv("index", "sentence1", "sentence2", "label")
    write(f"{d}/train.tsv", [h, tsv("0", "A b.", "C d.", values[1]), tsv("1", "E", "F",
                                                                        values[0])])
    write(f"{d}/dev.tsv", [h, tsv("3", "x", "y", values[0])])
    write(f"{d}/test.tsv", [tsv("index", "sentence1", "sentence2"), tsv("0", "t1", "t2")])
    p = get_processor(task)
    assert p.get_labels() == labels
    assert p.get_train_examples(d) == [ex("train-0", "A b.", "C d.", labels[1]),
                                       ex("train-1", "E", "F", labels[0])]
    assert p.get_dev_examples(d) == [ex("dev-3", "x", "y", labels[0])]
    assert p.get_test_examples(d) == [ex("test-0", "t1", "t2", labels[0])]


def test_xnli_fixture(tmp_path):
    d = str(tmp_path)
    write(f"{d}/multinli/multinli.train.de.tsv", [tsv("premise", "hypo", "label"),
                                                  tsv("Er ging.", "Er kam.", "contradictory"),
                                                  tsv("Sie lacht.", "Sie ist froh.", "neutral")])
    head = tsv("language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID",
               "pairID", "genre", "label1")

    def row(lang, label, s1, s2):
        return tsv(lang, label, "", "", "", "", s1, s2, "1", "1", "fiction", label)

    rows = [head, row("en", "neutral", "E1", "E2"), row("de", "entailment", "D1", "D2"),
            row("zh", "contradiction", "Z1", "Z2"), row("de", "neutral", "D3", "D4")]
    write(f"{d}/xnli.dev.tsv", rows)
    write(f"{d}/xnli.test.tsv", rows)
    p = get_processor("xnli", language="de")
    assert p.get_train_examples(d) == [ex("train-1", "Er ging.", "Er kam.", "contradiction"),
                                       ex("train-2", "Sie lacht.", "Sie ist froh.", "neutral")]
    assert p.get_dev_examples(d) == [ex("dev-2", "D1", "D2", "entailment"),
                                     ex("dev-4", "D3", "D4", "neutral")]
    assert p.get_test_examples(d) == [ex("test-2", "D1", "D2", "contradiction"),
                                      ex("test-4", "D3", "D4", "contradiction")]
    assert XnliProcessor().language == "zh"  # Google's default
    assert get_processor("xnli").get_dev_examples(d) == [ex("dev-3", "Z1", "Z2",
                                                            "contradiction")]
    with pytest.raises(ValueError, match="multinli.train.fr.tsv"):
        get_processor("xnli", language="fr").get_train_examples(d)


# ------------------------------------------------------------------------------- errors
def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError) as e:
        get_processor("glue-nope")
    msg = str(e.value)
    assert "glue-nope" in msg
    for name in ("cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "mnli-mm", "qnli", "rte",
                 "wnli", "xnli", "tsv", "csv"):
        assert name in msg and name in PROCESSORS


def test_missing_file_names_path(tmp_path):
    with pytest.raises(ValueError, match="not found: " + re.escape(os.path.join(str(tmp_path), "dev.tsv"))):
        get_processor("rte").get_dev_examples(str(tmp_path))


def test_wrong_column_count_names_file_and_line(tmp_path):
    d = str(tmp_path)
    write(f"{d}/dev.tsv", [MRPC_HEADER, tsv("1", "1", "2", "a", "b"), tsv("1", "1", "2", "a"),
                           tsv("0", "1", "2", "a", "b")], bom=True)
    with pytest.raises(ValueError, match=r"dev\.tsv, line 3: expected 5 .*got 4"):
        get_processor("mrpc").get_dev_examples(d)


def test_bad_label_names_file_and_line(tmp_path):
    d = str(tmp_path)
    write(f"{d}/dev.tsv", [tsv("index", "sentence1", "sentence2", "label"),
                           tsv("0", "a", "b", "entailment"), tsv("1", "a", "b", "maybe")])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 3: label 'maybe'"):
        get_processor("rte").get_dev_examples(d)


# --------------------------------------------------------------------- generic TSV / CSV
def test_tsv_processor_by_index_first_seen_labels(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.tsv", [tsv("pos", "great film", "x"), tsv("neg", "awful", "y"),
                             tsv("mid", "meh", "z"), tsv("neg", '"quoted"', "w")])
    write(f"{d}/dev.tsv", [tsv("neg", "bad", "v")])
    write(f"{d}/test.tsv", [tsv("?", "unknown", "u")])
    p = TsvProcessor(text_column=1, label_column=0)
    with pytest.raises(ValueError, match="labels are not known yet"):
        p.get_labels()
    assert p.get_train_examples(d) == [ex("train-0", "great film", None, "pos"),
                                       ex("train-1", "awful", None, "neg"),
                                       ex("train-2", "meh", None, "mid"),
                                       ex("train-3", '"quoted"', None, "neg")]
    assert p.get_labels() == ["pos", "neg", "mid"]
    assert p.get_dev_examples(d) == [ex("dev-0", "bad", None, "neg")]
    assert p.get_test_examples(d) == [ex("test-0", "unknown", None, "pos")]
    q = get_processor("tsv", text_column=1, label_column=0, text_pair_column=2,
                      label_order="sorted")
    q.get_train_examples(d)
    assert q.get_labels() == ["mid", "neg", "pos"]
    assert q.get_dev_examples(d) == [ex("dev-0", "bad", "v", "neg")]
    write(f"{d}/dev.tsv", [tsv("neg", "bad", "v"), tsv("huh", "odd", "v")])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2: label 'huh'"):
        q.get_dev_examples(d)
    write(f"{d}/dev.tsv", [tsv("neg", "bad", "v"), tsv("neg", "odd")])
    with pytest.raises(ValueError, match=r"dev\.tsv, line 2: expected 3 columns, got 2"):
        q.get_dev_examples(d)


def test_tsv_processor_header_names_fixed_labels_regression(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.tsv", [tsv("id", "text", "label"), tsv("a", "one", "1"),
                             tsv("b", "two", "0")], bom=True)
    write(f"{d}/test.tsv", [tsv("id", "text"), tsv("c", "three")])
    p = TsvProcessor(text_column="text", label_column="label", header=True, labels=["0", "1"])
    assert p.get_train_examples(d) == [ex("train-0", "one", None, "1"),
                                       ex("train-1", "two", None, "0")]
    assert p.get_labels() == ["0", "1"]
    assert p.get_test_examples(d) == [ex("test-0", "three", None, "0")]
    r = TsvProcessor(text_column="text", label_column="label", header=True, regression=True)
    assert r.get_train_examples(d)[0].label == 1.0 and r.get_labels() == []
    with pytest.raises(ValueError, match="not in header"):
        TsvProcessor(text_column="txt", label_column="label", header=True).get_train_examples(d)
    with pytest.raises(ValueError, match="needs header=True"):
        TsvProcessor(text_column="text", label_column=0)


def test_csv_processor_quoted(tmp_path):
    d = str(tmp_path)
    write(f"{d}/train.csv", ["sentence,label", '"Hello, world",yes', 'plain,no'])
    p = CsvProcessor(text_column="sentence", label_column="label", header=True)
    assert p.get_train_examples(d) == [ex("train-0", "Hello, world", None, "yes"),
                                       ex("train-1", "plain", None, "no")]
    assert p.get_labels() == ["yes", "no"]
    assert isinstance(get_processor("csv", text_column=0, label_column=1), CsvProcessor)


# --------------------------------------------------------------------------- real files
needs_glue = pytest.mark.skipif(not GLUE.is_dir(), reason=f"no GLUE data at {GLUE}")


@needs_glue
@pytest.mark.parametrize("task,split,count,labels", [
    ("mrpc", "dev", 408, {"not_equivalent", "equivalent"}),
    ("mrpc", "train", 3668, {"not_equivalent", "equivalent"}),
    ("sst-2", "dev", 872, {"negative", "positive"}),
    ("cola", "dev", 1043, {"unacceptable", "acceptable"}),
    ("rte", "dev", 277, {"entailment", "not_entailment"}),
    ("sts-b", "dev", 1500, None),
    ("sts-b", "train", 5749, None),
    ("wnli", "dev", 71, {"not_entailment", "entailment"}),
])
def test_real_glue_files(task, split, count, labels):
    folder = {"mrpc": "MRPC", "sst-2": "SST-2", "cola": "CoLA", "rte": "RTE", "sts-b": "STS-B",
              "wnli": "WNLI"}[task]
    d = GLUE / folder
    if not (d / f"{split}.tsv").is_file():
        pytest.skip(f"no {d / split}.tsv")
    p = get_processor(task)
    examples = getattr(p, f"get_{split}_examples")(str(d))
    assert len(examples) == count
    assert len({e.guid for e in examples}) == count
    assert all(e.text_a for e in examples)
    if labels is None:
        scores = [e.label for e in examples]
        assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
        assert all(e.text_b for e in examples)
    else:
        assert {e.label for e in examples} == labels


@needs_glue
def test_real_first_rows():
    mrpc = get_processor("mrpc").get_dev_examples(str(GLUE / "MRPC"))
    assert mrpc[0].guid == "dev-1" and mrpc[0].label == "equivalent"
    assert mrpc[0].text_a.startswith("He said the foodservice pie business")
    assert mrpc[0].text_b.startswith('"The foodservice pie business')  # quote kept literally
    cola = get_processor("cola").get_dev_examples(str(GLUE / "CoLA"))
    assert cola[0] == ex("dev-0", "The sailors rode the breeze clear of the rocks.", None,
                     "acceptable")
    cola_test = get_processor("cola").get_test_examples(str(GLUE / "CoLA"))
    assert cola_test[0] == ex("test-1", "Bill whistled past the house.", None, "unacceptable")
    assert len(cola_test) == 1063
    mrpc_test = get_processor("mrpc").get_test_examples(str(GLUE / "MRPC"))
    assert len(mrpc_test) == 1725 and {e.label for e in mrpc_test} == {"not_equivalent"}
    stsb = get_processor("sts-b").get_dev_examples(str(GLUE / "STS-B"))
    assert stsb[0] == ex("dev-0", "A man with a hard hat is dancing.",
                         "A man wearing a hard hat is dancing.", 5.0)


# ------------------------------------------------------------------------------ metrics
# 2x2 example: labels/preds below give TP=3, FN=1, FP=1, TN=3.
Y8 = [1, 1, 1, 0, 0, 0, 0, 1]
P8 = [1, 0, 1, 0, 0, 1, 0, 1]
# Asymmetric: TP=2, FP=1, FN=3, TN=4.
Y10 = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
P10 = [1, 1, 0, 0, 0, 1, 0, 0, 0, 0]


def test_accuracy_f1_mcc_hand_computed():
    assert accuracy(P8, Y8) == 0.75
    assert f1_score(P8, Y8) == pytest.approx(6 / 8)               # 2TP / (2TP + FP + FN)
    assert matthews_corrcoef(P8, Y8) == pytest.approx(0.5)         # (9 - 1) / sqrt(4^4)
    assert accuracy(P10, Y10) == 0.6
    assert f1_score(P10, Y10) == pytest.approx(0.5)                 # 4 / 8
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 5 / sqrt(3*5*5*7)
    assert matthews_corrcoef(P10, Y10) == pytest.approx(5 / math.sqrt(525))
    assert matthews_corrcoef(Y10, Y10) == 1.0
    assert matthews_corrcoef([1 - y for y in Y10], Y10) == -1.0
    # Multiclass (sklearn's formula): c=3 correct of s=4, true counts t=[2,1,1],
    # pred counts p=[1,2,1]: (3*4 - 5) / sqrt((16 - 6) * (16 - 6)) = 0.7
    assert matthews_corrcoef([0, 1, 1, 2], [0, 0, 1, 2]) == pytest.approx(0.7)


def test_pearson_spearman_hand_computed():
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(9 / math.sqrt(84))
    assert spearman([1, 2, 3], [1, 2, 4]) == pytest.approx(1.0)
    assert spearman([3, 2, 1], [1, 2, 4]) == pytest.approx(-1.0)
    np.testing.assert_array_equal(rankdata([10, 20, 20, 30, 20]), [1, 3, 3, 5, 3])
    np.testing.assert_array_equal(rankdata([2, 1, 2]), [2.5, 1, 2.5])
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))


def test_degenerate_cases():
    assert matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0        # one class only
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0  # constant predictions
    assert f1_score([0, 0], [0, 0]) == 0.0                       # no positives anywhere
    assert f1_score([0, 0], [1, 1]) == 0.0
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0
    assert pearson([2.0], [3.0]) == 0.0
    for fn in (accuracy, f1_score, matthews_corrcoef, pearson, spearman):
        with pytest.raises(ValueError, match="empty"):
            fn([], [])
        with pytest.raises(ValueError, match="differ"):
            fn([1, 2], [1, 2, 3])
    for task in ("cola", "mrpc", "sts-b", "rte"):
        with pytest.raises(ValueError):
            glue_metrics(task, [], [])
    out = glue_metrics("sts-b", [1, 1, 1], [1, 2, 3])
    assert all(math.isfinite(v) for v in out.values())


def test_glue_metrics_per_task():
    assert glue_metrics("cola", P8, Y8) == {"mcc": pytest.approx(0.5), "accuracy": 0.75}
    m = glue_metrics("MRPC", P8, Y8)
    assert m == {"accuracy": 0.75, "f1": pytest.approx(0.75), "acc_and_f1": pytest.approx(0.75)}
    assert set(glue_metrics("qqp", P10, Y10)) == {"accuracy", "f1", "acc_and_f1"}
    s = glue_metrics("sts-b", [1, 2, 3], [1, 2, 4])
    assert s == {"pearson": pytest.approx(9 / math.sqrt(84)), "spearmanr": pytest.approx(1.0),
                 "corr": pytest.approx((9 / math.sqrt(84) + 1) / 2)}
    assert glue_metrics("stsb", np.array([[1.0], [2.0], [3.0]]), [1, 2, 4])["spearmanr"] == \
        pytest.approx(1.0)
    for task in ("sst-2", "mnli", "mnli-mm", "qnli", "rte", "wnli", "xnli"):
        assert glue_metrics(task, P8, Y8) == {"accuracy": 0.75}
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]])
    assert glue_metrics("sst-2", logits, [1, 0, 0]) == {"accuracy": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="unknown task"):
        glue_metrics("nope", P8, Y8)


def test_cross_check_scipy_sklearn():
    stats = pytest.importorskip("scipy.stats")
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 200).astype(float)
    y = x + rng.integers(0, 3, 200)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    a, b = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert f1_score(a, b) == pytest.approx(skm.f1_score(b, a))
    assert matthews_corrcoef(a, b) == pytest.approx(skm.matthews_corrcoef(b, a))
    a3, b3 = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    assert matthews_corrcoef(a3, b3) == pytest.approx(skm.matthews_corrcoef(b3, a3))


def test_module_exports():
    assert set(glue.__all__) >= {"InputExample", "DataProcessor", "PROCESSORS", "get_processor"}


@pytest.mark.parametrize("regression", [False, True])
def test_tsv_header_row_read_as_data_is_refused(tmp_path, regression):
    d = str(tmp_path)
    values = ["0.5", "1.5", "2.5"] if regression else ["1", "0", "1"]
    write(f"{d}/train.tsv", [tsv("sentence", "label")] +
          [tsv(f"text {i}", v) for i, v in enumerate(values)])
    p = TsvProcessor(text_column=0, label_column=1, regression=regression)
    with pytest.raises(glue.InputError, match=r"train\.tsv: the first row looks like a header "
                                              r"\(its label column holds 'label'.*--header"):
        p.get_train_examples(d)
    # A label word that only appears once is not a header on its own.
    write(f"{d}/train.tsv", [tsv("a", "pos"), tsv("b", "neg"), tsv("c", "neg")])
    if not regression:
        assert len(TsvProcessor(text_column=0, label_column=1).get_train_examples(d)) == 3
