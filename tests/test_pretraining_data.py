"""create_pretraining_data: Google's algorithm, our fast path, the script, dynamic masking.

The corpora are generated here:
* "words": every document uses its own words (w<doc><letter>) plus shared suffix pieces
  (##s, ##ing, ##ed), so the document a token comes from is known and words have 1-2 pieces;
* "numbers": every document counts n0, n1, ... through its sentences of 20 numbers (one vocab
  word per number), so where a token sits in its document, and whether a segment was cut, is
  known (truncation, continuation).
"""
from __future__ import annotations

import collections
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import decode_record, encode_example, feature_spec
from bert_tf.data import pretraining_data as pdm
from bert_tf.data import pretraining_instances, record_encoder
from bert_tf.data import pretraining_reference as google_ref
from bert_tf.data.dynamic_masking import dynamic_masking_fn
from bert_tf.text import FullTokenizer, Vocab, VocabError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SUFFIXES = ["s", "ing", "ed"]
LETTERS = "abcdef"
NUM_DOCS = 60
NUMBERS = 400
S, M = 64, 10


def _doc_word(d: int, k: int) -> str:
    return f"w{d}{LETTERS[k]}"


def _write_words_corpus(path: str, seed: int = 0, num_docs: int = NUM_DOCS,
                        long_every: int = 0) -> None:
    rng = random.Random(seed)
    lines = []
    for d in range(num_docs):
        for _ in range(rng.choice([1, 2, rng.randint(3, 30), rng.randint(3, 30)])):
            n = rng.randint(2, 20)
            if long_every and rng.randrange(long_every) == 0:
                n = rng.randint(60, 90)  # longer than max_seq_length: truncation
            words = [_doc_word(d, rng.randrange(len(LETTERS))) + rng.choice(["", "", ""] + SUFFIXES)
                     for _ in range(n)]
            lines.append(" ".join(words) + rng.choice(["", " ."]))
        lines.append("")
        if d % 7 == 3:
            lines.append("   ")  # whitespace-only: one more document break
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


SENTENCE = 20  # numbers per sentence of the numbers corpus


def _write_numbers_corpus(path: str, seed: int = 1, num_docs: int = 40) -> None:
    rng = random.Random(seed)
    lines = []
    for _ in range(num_docs):
        for s in range(rng.randint(1, 12)):
            lines.append(" ".join(f"n{s * SENTENCE + i}" for i in range(SENTENCE)))
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretraining_data")
    tokens = (SPECIAL + ["."] + ["##" + s for s in SUFFIXES]
              + [_doc_word(d, k) for d in range(NUM_DOCS) for k in range(len(LETTERS))]
              + [f"n{i}" for i in range(NUMBERS)])
    vocab_path = str(root / "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    words = str(root / "words.txt")
    _write_words_corpus(words, long_every=15)
    numbers = str(root / "numbers.txt")
    _write_numbers_corpus(numbers)
    vocab = Vocab(tokens, path=vocab_path)
    doc_of = {vocab.id(_doc_word(d, k)): d for d in range(NUM_DOCS) for k in range(len(LETTERS))}
    number_of = {vocab.id(f"n{i}"): i for i in range(NUMBERS)}
    return dict(root=root, vocab_path=vocab_path, vocab=vocab, words=words, numbers=numbers,
                doc_of=doc_of, number_of=number_of)


def _read(paths) -> list[bytes]:
    return [r.numpy() for p in ([paths] if isinstance(paths, str) else paths)
            for r in tf.data.TFRecordDataset(p)]


def _decode(paths, seq=S, m=M) -> dict[str, np.ndarray]:
    recs = _read(paths)
    out = decode_record(tf.constant(recs), seq, m)
    return {k: v.numpy() for k, v in out.items()}


def _originals(f: dict[str, np.ndarray]) -> np.ndarray:
    """input_ids with the masked positions given back their labels."""
    ids = f["input_ids"].copy()
    rows, cols = np.nonzero(f["masked_lm_weights"])
    ids[rows, f["masked_lm_positions"][rows, cols]] = f["masked_lm_ids"][rows, cols]
    return ids


def _run(data, out_name, input_file=None, **kw):
    kw.setdefault("max_seq_length", S)
    kw.setdefault("max_predictions_per_seq", M)
    kw.setdefault("dupe_factor", 3)
    kw.setdefault("progress", False)
    out = str(data["root"] / out_name)
    summary = pdm.create_pretraining_data(input_file or data["words"], out, data["vocab"], **kw)
    return out, summary


@pytest.fixture(scope="module")
def fast(data):
    out, summary = _run(data, "fast.tfrecord", dupe_factor=6)
    return out, summary, _decode(out)


# ---- record format ----------------------------------------------------------------------------


def test_record_features_dtypes_and_shapes(data, fast):
    path, summary, f = fast
    example = tf.train.Example.FromString(_read(path)[0])
    assert set(example.features.feature) == set(feature_spec(S, M))
    for name in ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                 "masked_lm_ids", "next_sentence_labels"):
        assert example.features.feature[name].WhichOneof("kind") == "int64_list", name
    assert example.features.feature["masked_lm_weights"].WhichOneof("kind") == "float_list"
    n = summary["instances"]
    assert n > 1000 and summary["records_per_file"] == [n]
    for name in ("input_ids", "input_mask", "segment_ids"):
        assert f[name].shape == (n, S) and f[name].dtype == np.int32
    for name in ("masked_lm_positions", "masked_lm_ids"):
        assert f[name].shape == (n, M) and f[name].dtype == np.int32
    assert f["masked_lm_weights"].shape == (n, M) and f["masked_lm_weights"].dtype == np.float32
    assert f["next_sentence_labels"].shape == (n, 1)

    vocab = data["vocab"]
    lengths = f["input_mask"].sum(axis=1)
    pos = np.arange(S)[None, :]
    assert np.array_equal(f["input_mask"], (pos < lengths[:, None]).astype(np.int32))
    ids = _originals(f)
    assert (ids[:, 0] == vocab.cls_id).all()
    assert (ids[np.arange(n), lengths - 1] == vocab.sep_id).all()
    assert ((ids == vocab.sep_id).sum(axis=1) == 2).all()
    assert (f["input_ids"][pos >= lengths[:, None]] == 0).all()  # Google pads with 0
    # segment ids: 0 through the first [SEP], 1 after it up to the end, 0 on padding.
    first_sep = np.argmax(ids == vocab.sep_id, axis=1)
    expected = ((pos > first_sep[:, None]) & (pos < lengths[:, None])).astype(np.int32)
    assert np.array_equal(f["segment_ids"], expected)
    count = f["masked_lm_weights"].sum(axis=1).astype(int)
    assert (count >= 1).all() and (count <= M).all()
    assert set(np.unique(f["masked_lm_weights"])) == {0.0, 1.0}
    for i in range(n):
        p = f["masked_lm_positions"][i, :count[i]]
        assert (np.diff(p) > 0).all() and p.max() < lengths[i]
        assert (f["masked_lm_positions"][i, count[i]:] == 0).all()
        assert (f["masked_lm_ids"][i, count[i]:] == 0).all()
    assert set(np.unique(f["next_sentence_labels"])) == {0, 1}


def test_serializer_matches_protobuf(data, fast):
    """Our vectorised encoder writes exactly protobuf's deterministic serialisation."""
    for rec in _read(fast[0])[:200]:
        assert tf.train.Example.FromString(rec).SerializeToString(deterministic=True) == rec
    rng = np.random.default_rng(0)
    n, seq, m = 50, 40, 7
    ids = rng.integers(0, 1 << 24, (n, seq)) * (rng.random((n, seq)) < 0.5)
    ids[:, 0] = rng.integers(0, 3, n)  # mixed varint widths in every batch
    masked = rng.integers(0, 1 << 30, (n, m))
    positions = rng.integers(0, seq, (n, m))
    weights = (rng.random((n, m)) < 0.6).astype(np.float32)
    mask = (rng.random((n, seq)) < 0.7).astype(np.uint8)
    nsp = rng.integers(0, 2, (n, 1))
    got = record_encoder.serialize_examples(
        {"input_ids": ids, "input_mask": mask, "segment_ids": mask, "masked_lm_ids": masked,
         "masked_lm_positions": positions, "next_sentence_labels": nsp},
        {"masked_lm_weights": weights})
    for i in range(n):
        example = tf.train.Example()
        feats = example.features.feature
        for name, values in (("input_ids", ids), ("input_mask", mask), ("segment_ids", mask),
                             ("masked_lm_ids", masked), ("masked_lm_positions", positions),
                             ("next_sentence_labels", nsp)):
            feats[name].int64_list.value.extend(int(v) for v in values[i])
        feats["masked_lm_weights"].float_list.value.extend(weights[i].tolist())
        assert got[i] == example.SerializeToString(deterministic=True), i
    # and records.encode_example's example (an unpadded instance) serialises the same way
    rec = encode_example([2, 7, 3, 9, 3], [0, 0, 0, 1, 1], [1, 3], [7, 9], 1, 8, 3)
    canonical = tf.train.Example.FromString(rec).SerializeToString(deterministic=True)
    assert record_encoder.serialize_examples(
        {"input_ids": np.array([[2, 7, 3, 9, 3, 0, 0, 0]]),
         "input_mask": np.array([[1, 1, 1, 1, 1, 0, 0, 0]]),
         "segment_ids": np.array([[0, 0, 0, 1, 1, 0, 0, 0]]),
         "masked_lm_positions": np.array([[1, 3, 0]]), "masked_lm_ids": np.array([[7, 9, 0]]),
         "next_sentence_labels": np.array([[1]])},
        {"masked_lm_weights": np.array([[1, 1, 0]], np.float32)})[0] == canonical


# ---- masking -----------------------------------------------------------------------------------


def _mask_stats(f, vocab):
    w = f["masked_lm_weights"] > 0
    rows, cols = np.nonzero(w)
    positions = f["masked_lm_positions"][rows, cols]
    labels = f["masked_lm_ids"][rows, cols]
    now = f["input_ids"][rows, positions]
    as_mask = now == vocab.mask_id
    kept = ~as_mask & (now == labels)
    return dict(fraction=w.sum() / f["input_mask"].sum(), mask=as_mask.mean(), kept=kept.mean(),
                random=(~as_mask & ~kept).mean(), labels=labels)


def test_masking_statistics(data, fast):
    _, summary, f = fast
    vocab = data["vocab"]
    st = _mask_stats(f, vocab)
    assert len(st["labels"]) > 8000
    # Google: round(0.15 * tokens) per instance (at least 1, at most M).
    lengths = f["input_mask"].sum(axis=1)
    expected = np.minimum(M, np.maximum(1, np.rint(lengths * 0.15))).sum() / lengths.sum()
    assert st["fraction"] == pytest.approx(expected, abs=1e-9)
    assert 0.13 < st["fraction"] < 0.17
    assert st["mask"] == pytest.approx(0.8, abs=0.015)
    assert st["kept"] == pytest.approx(0.1, abs=0.012)
    assert st["random"] == pytest.approx(0.1, abs=0.012)
    assert not np.isin(st["labels"], [vocab.cls_id, vocab.sep_id, vocab.pad_id]).any()
    assert summary["masked"] == len(st["labels"])
    assert summary["mask_token_fraction"] == pytest.approx(st["mask"])
    assert summary["masked_fraction"] == pytest.approx(st["fraction"])


def _word_groups(ids_row, length, vocab):
    """Google's whole-word candidate groups of one instance (## pieces join the previous
    candidate, [CLS]/[SEP] are skipped)."""
    groups: list[list[int]] = []
    for i in range(length):
        t = int(ids_row[i])
        if t in (vocab.cls_id, vocab.sep_id):
            continue
        if groups and vocab.token(t).startswith("##"):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@pytest.mark.parametrize("whole_word", [True, False])
def test_whole_word_masking_never_splits_a_word(data, whole_word):
    out, _ = _run(data, f"wwm_{whole_word}.tfrecord", do_whole_word_mask=whole_word,
                  dupe_factor=2)
    f = _decode(out)
    ids = _originals(f)
    lengths = f["input_mask"].sum(axis=1)
    split = multi = 0
    for i in range(len(ids)):
        masked = set(f["masked_lm_positions"][i, :int(f["masked_lm_weights"][i].sum())].tolist())
        for g in _word_groups(ids[i], lengths[i], data["vocab"]):
            hit = sum(p in masked for p in g)
            split += 0 < hit < len(g)
            multi += hit == len(g) > 1
    if whole_word:
        assert split == 0 and multi > 100
    else:
        assert split > 100  # the check above is not vacuous


# ---- instance layout ------------------------------------------------------------------------


def test_truncation_keeps_max_seq_length_and_trims_both_ends(data):
    out, _ = _run(data, "numbers.tfrecord", input_file=data["numbers"], max_seq_length=32,
                  dupe_factor=5)
    f = _decode(out, seq=32)
    ids = _originals(f)
    vocab, number_of = data["vocab"], data["number_of"]
    lengths = f["input_mask"].sum(axis=1)
    assert (lengths <= 32).all() and (lengths == 32).mean() > 0.5
    front = back = 0
    for i in range(len(ids)):
        sep = int(np.argmax(ids[i] == vocab.sep_id))
        a = [number_of[t] for t in ids[i, 1:sep]]
        b = [number_of[t] for t in ids[i, sep + 1:lengths[i] - 1]]
        assert a and b
        assert np.all(np.diff(a) == 1) and np.all(np.diff(b) == 1)  # contiguous text
        if f["next_sentence_labels"][i, 0] == 0:  # the actual continuation: B follows A
            assert b[0] > a[-1]
            if (a[-1] + 1) % SENTENCE == 0 and b[0] % SENTENCE == 0:  # neither end cut
                assert b[0] == a[-1] + 1
        # Segments start and end on sentence boundaries unless truncation cut them.
        front += (a[0] % SENTENCE != 0) + (b[0] % SENTENCE != 0)
        back += ((a[-1] + 1) % SENTENCE != 0) + ((b[-1] + 1) % SENTENCE != 0)
    # Truncation cuts at the front as often as at the back (a coin per token).
    assert front > 0.2 * len(ids) and back > 0.2 * len(ids)
    assert 0.8 < front / back < 1.25


def test_random_next_sentence_from_another_document(data, fast):
    _, summary, f = fast
    ids = _originals(f)
    vocab, doc_of = data["vocab"], data["doc_of"]
    nsp = f["next_sentence_labels"][:, 0]
    assert summary["random_next_fraction"] == pytest.approx(nsp.mean())
    # Half of the multi-sentence chunks plus every one-sentence chunk: above one half.
    assert 0.5 < nsp.mean() < 0.7
    compared = 0
    for i in range(len(ids)):
        sep = int(np.argmax(ids[i] == vocab.sep_id))
        docs_a = {doc_of[t] for t in ids[i, 1:sep] if t in doc_of}
        docs_b = {doc_of[t] for t in ids[i, sep + 1:] if t in doc_of}
        assert len(docs_a) <= 1 and len(docs_b) <= 1, i  # A and B: one document each
        if docs_a and docs_b:  # (a segment cut down to "." or "##s" names no document)
            assert (docs_a != docs_b) == bool(nsp[i]), i
            compared += 1
    assert compared > 0.95 * len(ids)


def test_truncation_counts_match_googles_loop():
    """The fast path's closed form for how many tokens leave A and B equals Google's loop."""
    for la in range(1, 40):
        for lb in range(1, 40):
            for max_tokens in (2, 5, 17, 40):
                a, b = la, lb
                while a + b > max_tokens:
                    if a > b:
                        a -= 1
                    else:
                        b -= 1
                assert pretraining_instances.truncation_counts(la, lb, max_tokens) == (la - a, lb - b)


# ---- reproducibility and the reference ------------------------------------------------------


def test_determinism_for_a_seed(data):
    a, _ = _run(data, "det_a.tfrecord", dupe_factor=2)
    b, _ = _run(data, "det_b.tfrecord", dupe_factor=2, num_processes=1)
    c, _ = _run(data, "det_c.tfrecord", dupe_factor=2, random_seed=7)
    with open(a, "rb") as fa, open(b, "rb") as fb, open(c, "rb") as fc:
        ra, rb, rc = fa.read(), fb.read(), fc.read()
    assert ra == rb  # same seed: the same bytes, whatever the number of processes
    assert ra != rc


@pytest.mark.parametrize("whole_word", [False, True])
def test_exact_rng_equals_reference(data, whole_word):
    """exact_rng: Google's random stream, one process: the reference's records, in order, in
    the same output files."""
    kw = dict(max_seq_length=S, max_predictions_per_seq=M, dupe_factor=2,
              do_whole_word_mask=whole_word, random_seed=3)
    ours = [str(data["root"] / f"exact_{whole_word}_{k}.tfrecord") for k in range(2)]
    ref = [str(data["root"] / f"ref_{whole_word}_{k}.tfrecord") for k in range(2)]
    s_ours = pdm.create_pretraining_data(data["words"], ",".join(ours), data["vocab"],
                                         exact_rng=True, progress=False, **kw)
    s_ref = google_ref.create_pretraining_data_reference(data["words"], ref, data["vocab"], **kw)
    for mine, theirs in zip(ours, ref):
        got = _read(mine)
        want = [tf.train.Example.FromString(r).SerializeToString(deterministic=True)
                for r in _read(theirs)]
        assert len(got) == len(want) > 100 and got == want
    for key in ("instances", "tokens", "masked", "masked_as_mask", "masked_kept",
                "random_next", "documents", "sentences"):
        assert s_ours[key] == s_ref[key], key


def test_exact_rng_on_token_ids_equals_reference(data):
    """generate_records on a Corpus of ids = create_instances_reference on the same tokens."""
    vocab = data["vocab"]
    rng = random.Random(11)
    words = [t for t in vocab.tokens if t not in SPECIAL]
    docs = [[[rng.choice(words) for _ in range(rng.randint(1, 40))]
             for _ in range(rng.randint(1, 15))] for _ in range(40)]
    kw = dict(max_seq_length=48, max_predictions_per_seq=8, dupe_factor=3,
              masked_lm_prob=0.2, short_seq_prob=0.3)
    ref = google_ref.create_instances_reference(None, FullTokenizer(vocab), rng=5,
                                         do_whole_word_mask=True, documents=docs, **kw)
    want = [tf.train.Example.FromString(encode_example(
        [vocab.id(t) for t in inst.tokens], inst.segment_ids, inst.masked_lm_positions,
        [vocab.id(t) for t in inst.masked_lm_labels], int(inst.is_random_next), 48, 8)
    ).SerializeToString(deterministic=True) for inst in ref]
    corpus = pdm.corpus_from_token_ids([[[vocab.id(t) for t in s] for s in d] for d in docs])
    got = [r for batch in pdm.generate_records(corpus, vocab, random_seed=5, exact_rng=True,
                                               do_whole_word_mask=True, **kw) for r in batch]
    assert len(got) == len(want) > 100 and got == want


def test_fast_path_statistics_equal_reference(data, tmp_path):
    corpus = str(tmp_path / "big.txt")
    _write_words_corpus(corpus, seed=5, num_docs=NUM_DOCS)
    kw = dict(max_seq_length=S, max_predictions_per_seq=M, dupe_factor=8)
    fast = pdm.create_pretraining_data(corpus, str(tmp_path / "f.tfrecord"), data["vocab"],
                                       progress=False, **kw)
    ref = google_ref.create_pretraining_data_reference(corpus, str(tmp_path / "r.tfrecord"),
                                                data["vocab"], **kw)
    assert fast["documents"] == ref["documents"] and fast["sentences"] == ref["sentences"]
    assert fast["instances"] == pytest.approx(ref["instances"], rel=0.03)
    assert fast["mean_tokens"] == pytest.approx(ref["mean_tokens"], rel=0.02)
    assert fast["masked_fraction"] == pytest.approx(ref["masked_fraction"], abs=0.003)
    assert fast["random_next_fraction"] == pytest.approx(ref["random_next_fraction"], abs=0.03)
    for key in ("mask_token_fraction", "kept_fraction", "random_token_fraction"):
        assert fast[key] == pytest.approx(ref[key], abs=0.02), key
    # the distribution of instance lengths, not only the mean
    f, r = _decode(str(tmp_path / "f.tfrecord")), _decode(str(tmp_path / "r.tfrecord"))
    hf = np.bincount(f["input_mask"].sum(1), minlength=S + 1) / len(f["input_mask"])
    hr = np.bincount(r["input_mask"].sum(1), minlength=S + 1) / len(r["input_mask"])
    assert np.abs(np.cumsum(hf) - np.cumsum(hr)).max() < 0.05  # Kolmogorov-Smirnov distance


def test_documents_and_reading_rules(data, tmp_path):
    """Blank / whitespace-only lines end documents, untokenizable lines are skipped, a file
    without a final blank line continues into the next file (as Google's loop)."""
    p1, p2 = tmp_path / "a.txt", tmp_path / "b.txt"
    p1.write_text("w0a w0b\n\n \t \n\n\x00\x01\nw1a\nw1b\n", encoding="utf-8")
    p2.write_text("w2a\n\nw3a ###\n", encoding="utf-8")
    from bert_tf.text import BertTokenizer

    corpus = pdm.read_corpus([str(p1), str(p2)], BertTokenizer(data["vocab"], True))
    ref = google_ref.read_documents_reference([str(p1), str(p2)], FullTokenizer(data["vocab"], True))
    assert [len(d) for d in ref] == [1, 3, 1]  # w1a, w1b and w2a form one document
    assert corpus.num_documents == 3
    assert np.diff(corpus.document_splits).tolist() == [1, 3, 1]
    got = [corpus.token_ids[a:b].tolist() for a, b in
           zip(corpus.sentence_splits[:-1], corpus.sentence_splits[1:])]
    want = [data["vocab"].id(t) for d in ref for s in d for t in s]
    assert [t for s in got for t in s] == want


# ---- errors, progress, the script -----------------------------------------------------------


def test_bad_options_and_inputs(data, tmp_path):
    with pytest.raises(pdm.PretrainingDataError, match="max_seq_length"):
        pdm.check_options(4, 20, 0.15, 0.1, 10)
    with pytest.raises(pdm.PretrainingDataError, match="masked_lm_prob"):
        pdm.check_options(128, 20, 0.0, 0.1, 10)
    with pytest.raises(pdm.PretrainingDataError, match="masked_lm_prob"):
        pdm.check_options(128, 20, 1.01, 0.1, 10)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        pdm.expand_input_files(f"{data['words']},{tmp_path}/nothing_here*.txt")
    with pytest.raises(pdm.PretrainingDataError, match="cannot write"):
        pdm.create_pretraining_data(data["words"], f"{data['words']}/x.tfrecord",
                                    data["vocab"], progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", encoding="utf-8")
    out = tmp_path / "empty.tfrecord"
    with pytest.raises(pdm.PretrainingDataError, match="no documents"):
        pdm.create_pretraining_data(str(empty), str(out), data["vocab"], progress=False)
    assert not out.exists()  # a failed run leaves no half-written output


def test_progress_lines_on_stderr(data, tmp_path, capfd):
    pdm.create_pretraining_data(data["words"], str(tmp_path / "p.tfrecord"), data["vocab"],
                                dupe_factor=1, max_seq_length=S, max_predictions_per_seq=M)
    err = capfd.readouterr().err
    assert "create_pretraining_data: tokenized" in err and "instances" in err


def _script(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(REPO, "create_pretraining_data.py"),
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_script_end_to_end(data, tmp_path):
    outs = [str(tmp_path / "out" / f"part-{k}.tfrecord") for k in range(2)]
    r = _script(f"--input_file={data['words']}", f"--output_file={','.join(outs)}",
                f"--vocab_file={data['vocab_path']}", f"--max_seq_length={S}",
                f"--max_predictions_per_seq={M}", "--dupe_factor=2", "--do_whole_word_mask",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    counts = [len(_read(p)) for p in outs]
    assert min(counts) > 100 and abs(counts[0] - counts[1]) <= 1  # round-robin
    assert "create_pretraining_data: tokenized" in r.stderr  # progress
    assert "random next" in r.stderr  # the summary
    f = _decode(outs)
    assert f["input_ids"].shape[1] == S


def test_script_errors(data, tmp_path):
    common = [f"--vocab_file={data['vocab_path']}"]
    r = _script(f"--input_file={data['words']},{tmp_path}/missing_*.txt",
                f"--output_file={tmp_path}/o.tfrecord", *common, cwd=tmp_path)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "error:" in last and "missing_*.txt" in last and "matched no files" in last
    assert "Traceback" not in r.stderr
    r = _script(f"--input_file={data['words']}", f"--output_file={data['words']}/o.tfrecord",
                *common, cwd=tmp_path)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "error: cannot write --output_file" in last and "Traceback" not in r.stderr


def test_duplicate_vocab_tokens_are_refused(data, tmp_path):
    # Google's loader lets the last line win: the ids of the earlier lines were still written.
    vocab = tmp_path / "vocab.txt"
    tokens = list(data["vocab"].tokens)
    vocab.write_text("\n".join(tokens + [tokens[7]]) + "\n")
    lines = f"'{re.escape(tokens[7])}' on lines 8, {len(tokens) + 1}"
    with pytest.raises(VocabError, match=lines):
        pdm.create_pretraining_data(data["words"], str(tmp_path / "o.tfrecord"), str(vocab),
                                    progress=False)
    assert list(tmp_path.iterdir()) == [vocab]


# ---- dynamic masking ------------------------------------------------------------------------


def _batch(n=64, seq=48, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, seq), np.int32)
    mask = np.zeros((n, seq), np.int32)
    lengths = rng.integers(8, seq + 1, n)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(5, 1000, length)
        ids[i, 0] = 2
        ids[i, rng.integers(2, length - 2)] = 3
        ids[i, length - 1] = 3
        mask[i, :length] = 1
    return {"input_ids": tf.constant(ids), "input_mask": tf.constant(mask),
            "segment_ids": tf.zeros((n, seq), tf.int32),
            "next_sentence_labels": tf.zeros((n, 1), tf.int32),
            "masked_lm_positions": tf.zeros((n, 6), tf.int32)}  # stale: replaced


def test_dynamic_masking(data):
    m = 6
    fn = dynamic_masking_fn(1000, mask_id=4, cls_id=2, sep_id=3, pad_id=0,
                            max_predictions_per_seq=m, masked_lm_prob=0.15, seed=1)
    batch = _batch()
    ids = batch["input_ids"].numpy()
    mask = batch["input_mask"].numpy()
    ds = tf.data.Dataset.from_tensors(batch).repeat(40).map(fn)
    stats = collections.Counter()
    first = None
    for out in ds:
        out = {k: v.numpy() for k, v in out.items()}
        if first is None:
            first = out
        assert out["masked_lm_positions"].shape == (64, m)
        assert out["masked_lm_ids"].shape == (64, m) and out["masked_lm_ids"].dtype == np.int32
        assert out["masked_lm_weights"].shape == (64, m)
        count = out["masked_lm_weights"].sum(axis=1).astype(int)
        selectable = ((ids != 2) & (ids != 3) & (mask > 0)).sum(axis=1)
        assert np.array_equal(count, np.minimum(m, np.ceil(0.15 * selectable).astype(int)))
        changed = np.zeros_like(mask, bool)
        for i in range(64):
            p = out["masked_lm_positions"][i, :count[i]]
            assert (np.diff(p) > 0).all()
            assert (out["masked_lm_positions"][i, count[i]:] == 0).all()
            assert mask[i, p].all() and not np.isin(ids[i, p], [0, 2, 3]).any()
            assert np.array_equal(out["masked_lm_ids"][i, :count[i]], ids[i, p])
            now = out["input_ids"][i, p]
            stats["mask"] += int((now == 4).sum())
            stats["kept"] += int(((now != 4) & (now == ids[i, p])).sum())
            stats["all"] += len(p)
            changed[i, p] = True
        # everything not chosen is untouched, padding included
        assert np.array_equal(out["input_ids"][~changed], ids[~changed])
        assert np.array_equal(out["segment_ids"], batch["segment_ids"].numpy())
    assert stats["mask"] / stats["all"] == pytest.approx(0.8, abs=0.03)
    assert stats["kept"] / stats["all"] == pytest.approx(0.1, abs=0.025)
    # new masks on every pass
    second = next(iter(ds.skip(1)))
    assert not np.array_equal(first["masked_lm_positions"],
                              second["masked_lm_positions"].numpy())
    # a seed reproduces the sequence of masks
    again = dynamic_masking_fn(1000, 4, 2, 3, 0, m, seed=1)(batch)
    assert np.array_equal(again["masked_lm_positions"].numpy(), first["masked_lm_positions"])
    with pytest.raises(ValueError, match="masked_lm_prob"):
        dynamic_masking_fn(1000, 4, 2, 3, 0, m, masked_lm_prob=0.0)


def test_dynamic_masking_on_records(data, fast):
    """On decoded records of the fast path (a tf.data pipeline as run_pretraining builds):
    the records' static masks are undone first, so the labels are the original tokens."""
    vocab = data["vocab"]
    fn = dynamic_masking_fn(len(vocab), vocab.mask_id, vocab.cls_id, vocab.sep_id,
                            vocab.pad_id, M, seed=0)
    records = tf.data.TFRecordDataset(fast[0]).batch(32, drop_remainder=True).take(3)
    for serialized in records:
        static = {k: v.numpy() for k, v in decode_record(serialized, S, M).items()}
        out = {k: v.numpy() for k, v in fn(decode_record(serialized, S, M)).items()}
        original = _originals(static)
        assert out["masked_lm_positions"].shape == (32, M)
        assert out["input_ids"].dtype == np.int32
        fresh = np.zeros_like(original, bool)
        for i in range(32):
            count = int(out["masked_lm_weights"][i].sum())
            p = out["masked_lm_positions"][i, :count]
            assert np.array_equal(out["masked_lm_ids"][i, :count], original[i, p])
            fresh[i, p] = True
        assert np.array_equal(out["input_ids"][~fresh], original[~fresh])  # no stale [MASK]
        labels = out["masked_lm_ids"][out["masked_lm_weights"] > 0]
        assert not np.isin(labels, [vocab.cls_id, vocab.sep_id, vocab.pad_id]).any()
