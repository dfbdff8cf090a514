"""CoNLL column files: reading, tag-scheme detection and conversion, labels, errors, writing."""
from __future__ import annotations

import pytest

from bert_tf.data import conll
from bert_tf.data.conll import ConllError
from bert_tf.data.ner_metrics import entity_spans
from bert_tf.errors import InputError
from shared_data import SHARED_DATA

WNUT17 = SHARED_DATA / "ner" / "wnut17"


def _write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_columns_docstart_blank_lines_and_separators(tmp_path):
    path = _write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects\tVBZ\tB-VP\tO\n"
                            "German JJ B-NP I-MISC\n \t\n\nPeter NNP B-NP I-PER\nBlackburn NNP I-NP "
                            "I-PER\n-DOCSTART- -X- O O\nBRUSSELS NNP I-NP I-LOC\n")
    data = conll.read_conll(path)
    assert data.tag_scheme == conll.IOB1
    assert [s.words for s in data.sentences] == [("EU", "rejects", "German"),
                                                 ("Peter", "Blackburn"), ("BRUSSELS",)]
    assert [s.tags for s in data.sentences] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER"),
                                                ("B-LOC",)]
    assert [s.lines for s in data.sentences] == [(3, 4, 5), (8, 9), (11,)]
    assert data.num_tokens == 6


@pytest.mark.parametrize("scheme,tags", [
    ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "B-ORG"]),
    ("IOB2", ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "B-ORG"]),
    ("IOBES", ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG", "S-ORG"]),
])
def test_schemes_are_detected_and_give_the_same_iob2(tmp_path, scheme, tags):
    words = "a b c d e f g".split()
    path = _write(tmp_path, "".join(f"{w} {t}\n" for w, t in zip(words, tags)))
    data = conll.read_conll(path)
    assert data.tag_scheme == scheme
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "B-ORG"]
    assert list(data.sentences[0].tags) == iob2
    # conlleval reads the same entities from the original and the converted tags.
    assert entity_spans(tags) == entity_spans(iob2)


def test_iobes_inside_and_override(tmp_path):
    assert conll.to_iob2(["B-X", "I-X", "I-X", "E-X", "O", "S-Y"], "IOBES") == [
        "B-X", "I-X", "I-X", "I-X", "O", "B-Y"]
    # An IOB2 file read as IOB1 (the override) gives the same IOB2 tags.
    path = _write(tmp_path, "a B-X\nb I-X\nc B-X\n")
    assert conll.read_conll(path, tag_scheme="iob1").sentences[0].tags == ("B-X", "I-X", "B-X")
    with pytest.raises(ConllError, match="unknown tag scheme 'BILOU'"):
        conll.read_conll(path, tag_scheme="BILOU")


@pytest.mark.parametrize("text,scheme,line,message", [
    ("a B-X\nb O\nc I-X\n", "IOB2", 3, "I-X must follow B-X or I-X"),
    ("a B-X\nb I-Y\n", "IOB2", 2, "I-Y must follow B-Y or I-Y"),
    ("a B-X\nb O\n", "IOBES", 1, "must be followed by I-X or E-X"),
    ("a S-X\nb I-X\nc E-X\n", None, 2, "it must follow B-X or I-X"),  # detected: IOBES
    ("a O\nb B-X\nc E-Y\n", "IOBES", 2, "must be followed by I-X or E-X"),
    ("a O\nb X-PER\n", "IOB2", 2, "expected O or one of B-TYPE, I-TYPE"),
    ("a O\nb PER\n", "IOB2", 2, "expected O or one of"),
])
def test_tags_that_break_the_scheme_name_file_and_line(tmp_path, text, scheme, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConllError, match=f"{path}:{line}: tag .*{message}") as info:
        conll.read_conll(path, tag_scheme=scheme)
    assert isinstance(info.value, InputError)


def test_line_without_tag_and_unreadable_file(tmp_path):
    path = _write(tmp_path, "a O\nb O\n\nlonely\n")
    with pytest.raises(ConllError, match=f"{path}:4: the line 'lonely' has no tag"):
        conll.read_conll(path)
    # A file to predict may have no tags at all.
    tokens = conll.read_tokens(path)
    assert [s.words for s in tokens.sentences] == [("a", "b"), ("lonely",)]
    assert tokens.sentences[1].tags == ("",) and tokens.sentences[1].lines == (4,)
    with pytest.raises(ConllError, match="cannot read CoNLL file"):
        conll.read_conll(tmp_path / "missing.txt")


def test_labels_from_training_file_roundtrip_and_unknown_tag_at_eval(tmp_path):
    train = conll.read_conll(_write(tmp_path, "a B-PER\nb O\n\nc B-LOC\nd I-LOC\n", "train.txt"))
    labels = conll.labels_from(train)
    assert labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    conll.write_labels(tmp_path / "out" / "labels.txt", labels)
    assert (tmp_path / "out" / "labels.txt").read_text() == "O\nB-LOC\nI-LOC\nB-PER\nI-PER\n"
    assert conll.read_labels(tmp_path / "out" / "labels.txt") == labels
    conll.check_known_tags(train, labels)
    dev_path = _write(tmp_path, "a B-PER\n\nb O\nc B-ORG\n", "dev.txt")
    with pytest.raises(ConllError, match=f"{dev_path}:4: tag 'B-ORG' is not one of the model's "
                                         "labels"):
        conll.check_known_tags(conll.read_conll(dev_path), labels)
    with pytest.raises(ConllError, match="lack 'O'"):
        conll.check_labels(["B-X", "I-X"])
    with pytest.raises(ConllError, match="duplicate labels"):
        conll.check_labels(["O", "B-X", "B-X"])
    with pytest.raises(ConllError, match="must be IOB2 tags"):
        conll.check_labels(["O", "S-X"])


def test_write_predictions_is_conlleval_format(tmp_path):
    data = conll.read_conll(_write(tmp_path, "EU B-ORG\nrejects O\n\nPeter B-PER\n"))
    out = tmp_path / "pred" / "eval_predictions.txt"
    conll.write_predictions(out, data.sentences, [["B-ORG", "B-MISC"], ["O"]])
    assert out.read_text() == "EU B-ORG B-ORG\nrejects O B-MISC\n\nPeter B-PER O\n\n"
    conll.write_predictions(out, data.sentences, [["O", "O"], ["B-PER"]], with_gold=False)
    assert out.read_text() == "EU O\nrejects O\n\nPeter B-PER\n\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["eval_predictions.txt"]
    with pytest.raises(ValueError, match="1 predicted tags for a sentence of 2 tokens"):
        conll.write_predictions(out, data.sentences, [["O"], ["O"]])


@pytest.mark.skipif(not WNUT17.is_dir(), reason="../shared/data/ner/wnut17 not present")
@pytest.mark.parametrize("name,sentences,tokens,entities", [
    ("wnut17train.conll", 3394, 62730, 1975),
    ("emerging.dev.conll", 1009, 15733, 836),
    ("emerging.test.annotated", 1287, 23394, 1079),
])
def test_wnut17_parses_with_the_published_counts(name, sentences, tokens, entities):
    data = conll.read_conll(WNUT17 / name)
    assert data.tag_scheme == conll.IOB2
    assert len(data.sentences) == sentences
    assert data.num_tokens == tokens
    assert sum(len(entity_spans(s.tags)) for s in data.sentences) == entities
    if name == "wnut17train.conll":
        assert conll.labels_from(data) == ["O"] + [
            f"{p}-{t}" for t in ("corporation", "creative-work", "group", "location", "person",
                                 "product") for p in "BI"]
