"""bert_tf.data.squad: reading SQuAD JSON and Google's feature creation, against the pure-Python
reference (tests/squad_reference.py) on real SQuAD v1.1 / v2.0 questions."""
from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from shared_data import GOOGLE_CKPT_INDEX, SHARED_DATA

import squad_reference as ref
from bert_tf.data import squad
from bert_tf.text.python_tokenizer import FullTokenizer, basic_tokenize
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab, load_vocab

SQUAD = SHARED_DATA / "squad"
TRAIN_V1 = SQUAD / "train-v1.1.rebuilt.json"
DEV_V2 = SQUAD / "dev-v2.0.rebuilt.json"
UNCASED_VOCAB = GOOGLE_CKPT_INDEX / "uncased_L-4_H-256_A-4" / "vocab.txt"
needs_squad = pytest.mark.skipif(not (TRAIN_V1.exists() and DEV_V2.exists()),
                                 reason="../shared/data/squad not available")


def _subset(path, out_path, picks):
    """Writes the picked paragraphs (`picks`: [(article, paragraph, n)], the first and last n
    questions of each: v2.0 lists the impossible ones last) as a SQuAD file with one answer per question (Google's training reader needs exactly one)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    paragraphs = []
    for a, p, n in picks:
        para = data[a]["paragraphs"][p]
        qas = para["qas"] if len(para["qas"]) <= 2 * n else para["qas"][:n] + para["qas"][-n:]
        qas = [dict(qa, answers=qa["answers"][:1]) for qa in qas]
        paragraphs.append({"context": para["context"], "qas": qas})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"version": "test", "data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    return out_path


def _picks(path, longest, spread, questions_per):
    """The `longest` longest paragraphs (1 question each) and `spread` evenly spaced others."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    index = [(len(p["context"]), a, i) for a, art in enumerate(data)
             for i, p in enumerate(art["paragraphs"])]
    by_length = sorted(index, reverse=True)
    picks = [(a, i, 1) for _, a, i in by_length[:longest]]
    step = len(index) // spread
    picks += [(a, i, questions_per) for _, a, i in index[::step][:spread]]
    return picks


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    if not (TRAIN_V1.exists() and DEV_V2.exists()):
        pytest.skip("../shared/data/squad not available")
    d = tmp_path_factory.mktemp("squad")
    return {"v1": _subset(TRAIN_V1, d / "v1.json", _picks(TRAIN_V1, 6, 8, 2)),
            "v2": _subset(DEV_V2, d / "v2.json", _picks(DEV_V2, 4, 8, 2))}


def _small_vocab(paths, size=600, cased=True):
    """A small vocab from the files' own words: frequent words, their characters and ## forms
    (so most words split into several pieces), leaving rare characters [UNK]."""
    words = collections.Counter()
    chars = collections.Counter()
    for path in paths:
        for article in json.load(open(path, encoding="utf-8"))["data"]:
            for p in article["paragraphs"]:
                texts = [p["context"]] + [qa["question"] for qa in p["qas"]]
                for text in texts:
                    for w in basic_tokenize(text, do_lower_case=not cased):
                        words[w] += 1
                        chars.update(w)
    alphabet = [c for c, n in chars.most_common() if n > 2]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + alphabet + ["##" + c for c in alphabet]
    tokens += ["##s", "##ed", "##ing", "##ly", "##tion"]
    tokens += [w for w, _ in words.most_common() if len(w) > 1 and w not in tokens]
    return Vocab(tokens[:size])


def _compare(path, vocab, do_lower_case, is_training, v2, max_seq_length, doc_stride,
             max_query_length):
    ours_examples = squad.read_squad_examples(path, is_training, v2)
    ref_examples = ref.read_examples(path, is_training, v2)
    assert [e.qas_id for e in ours_examples] == [e["qas_id"] for e in ref_examples]
    for o, r in zip(ours_examples, ref_examples):
        assert o.doc_tokens == r["doc_tokens"]
        assert (o.start_position, o.end_position) == (r["start_position"], r["end_position"])
        # Google reads is_impossible only for training; we keep it for evaluation too.
        assert o.is_impossible == r["is_impossible"] or not is_training
    ours = list(squad.convert_examples_to_features(
        ours_examples, BertTokenizer(vocab, do_lower_case), max_seq_length, doc_stride,
        max_query_length, is_training, batch_size=7))
    expected = ref.convert(ref_examples, FullTokenizer(vocab, do_lower_case), max_seq_length,
                           doc_stride, max_query_length, is_training)
    assert len(ours) == len(expected)
    for o, r in zip(ours, expected):
        for key, value in r.items():
            assert getattr(o, key) == value, (key, o.unique_id)
    return ours


@needs_squad
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("is_training", [True, False])
def test_features_equal_google_reference_small_vocab(files, version, is_training):
    vocab = _small_vocab([files["v1"], files["v2"]])
    features = _compare(files[version], vocab, False, is_training, version == "v2",
                        max_seq_length=64, doc_stride=24, max_query_length=16)
    windows = collections.Counter(f.example_index for f in features)
    assert max(windows.values()) >= 5  # long contexts really are split into several windows
    assert any("[UNK]" in f.tokens for f in features)
    if is_training:
        positions = [(f.start_position, f.end_position) for f in features]
        assert sum(p != (0, 0) for p in positions) >= 10  # answers inside windows
        assert (0, 0) in positions  # and outside / impossible
        if version == "v2":
            assert any(f.is_impossible for f in features)


@needs_squad
@pytest.mark.skipif(not UNCASED_VOCAB.exists(), reason="Google uncased vocab not available")
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_features_equal_google_reference_google_vocab(files, version):
    vocab = load_vocab(str(UNCASED_VOCAB))
    _compare(files[version], vocab, True, True, version == "v2", max_seq_length=96,
             doc_stride=32, max_query_length=24)


def test_improve_answer_span_tightens_to_the_answer_pieces():
    doc = ["the", "year", "(", "1895", "-", "1943", ")", "."]
    assert squad.improve_answer_span(doc, 2, 6, ["1895"]) == (3, 3)
    assert squad.improve_answer_span(doc, 2, 6, ["1900"]) == (2, 6)


def test_split_words_offsets():
    words, offsets = squad.split_words(" ab\u202fc  d\n")
    assert words == ["ab", "c", "d"]
    assert offsets == [-1, 0, 0, 0, 1, 1, 1, 2, 2]


def _write(tmp_path, obj, name="bad.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def _one(context, qa):
    return {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}


@pytest.mark.parametrize("qa, message", [
    ({"id": "q7", "question": "?", "answers": []}, "exactly 1 answer"),
    ({"id": "q7", "question": "?", "answers": [{"text": "zz", "answer_start": 40}]},
     "does not lie in the context"),
    ({"id": "q7", "question": "?", "answers": [{"text": "a"}]}, "answer_start"),
    ({"id": "q7", "answers": [{"text": "a", "answer_start": 0}]}, "'question'"),
])
def test_bad_questions_name_file_and_id(tmp_path, qa, message):
    path = _write(tmp_path, _one("a b c", qa))
    with pytest.raises(squad.SquadError, match=message) as e:
        squad.read_squad_examples(path, is_training=True)
    assert str(path) in str(e.value) and "'q7'" in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(squad.SquadError, match="cannot read"):
        squad.read_squad_examples(_write(tmp_path, "{not json"), False)
    with pytest.raises(squad.SquadError, match="'data'"):
        squad.read_squad_examples(_write(tmp_path, {"version": "1"}), False)
    with pytest.raises(squad.SquadError, match="cannot read"):
        squad.read_squad_examples(tmp_path / "missing.json", False)


def test_answer_text_not_at_offset_is_skipped_like_google(tmp_path):
    data = _one("alpha beta gamma", {"id": "x", "question": "q?",
                                     "answers": [{"text": "delta", "answer_start": 6}]})
    assert squad.read_squad_examples(_write(tmp_path, data), is_training=True) == []
    assert len(squad.read_squad_examples(_write(tmp_path, data), is_training=False)) == 1


def _tiny_tokenizer():
    return BertTokenizer(Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c",
                                "what", "?"]), do_lower_case=True)


def test_records_round_trip(tmp_path):
    data = {"data": [{"title": "t", "paragraphs": [{"context": "a b c a b c a b", "qas": [
        {"id": "1", "question": "what?", "answers": [{"text": "c", "answer_start": 4}]},
        {"id": "2", "question": "what?", "answers": [], "is_impossible": True}]}]}]}
    examples = squad.read_squad_examples(_write(tmp_path, data, "d.json"), True, True)
    features = list(squad.convert_examples_to_features(examples, _tiny_tokenizer(), 10, 2, 4,
                                                       is_training=True))
    assert [f.doc_span_index for f in features] == [0, 1, 2, 0, 1, 2]
    assert [(f.start_position, f.end_position) for f in features] == [
        (6, 6), (4, 4), (0, 0), (0, 0), (0, 0), (0, 0)]
    path = tmp_path / "train.tf_record"
    assert squad.write_features(features, path, is_training=True) == 6
    spec = squad.record_spec(10, is_training=True)
    records = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(str(path))]
    rows = list(squad.features_dataset(features, is_training=True).as_numpy_iterator())
    for record, row, feature in zip(records, rows, features):
        for name in spec:
            np.testing.assert_array_equal(record[name].numpy(), row[name])
        assert row["unique_ids"] == feature.unique_id
        assert list(row["input_ids"]) == feature.input_ids
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_seq_length_too_small_for_question():
    with pytest.raises(squad.InputError, match="max_seq_length"):
        list(squad.convert_examples_to_features([], _tiny_tokenizer(), 20, 8, 64))
