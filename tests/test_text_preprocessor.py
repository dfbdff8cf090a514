"""BertPreprocessor (strings → encoder inputs), the tokenize CLI and build_vocab."""
import collections
import os
import random
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertEncoder
from bert_tf.errors import InputError
from bert_tf.text import (BertPreprocessor, BertTokenizer, FullTokenizer, Vocab, VocabError,
                          pack_tokens)
from bert_tf.text.build_vocab import build_vocab_file, count_words, learn_vocab
from bert_tf.text.tokenize import tokenize_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!", "the", "cat",
         "sat", "un", "##aff", "##able", ",", "."]
TEXTS_A = ["Hello, world!", "", "   ", "the cat sat " * 5, "unaffable"]
TEXTS_B = ["the cat", "hello", "x", "world . world", ""]


def _reference(texts_a, texts_b, seq_length, vocab=VOCAB):
    """Google's rules in Python: FullTokenizer + pack_tokens + padding."""
    tok = FullTokenizer(Vocab(vocab))
    out = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
    for i, a in enumerate(texts_a):
        b = tok.tokenize(texts_b[i]) if texts_b is not None else None
        tokens, types = pack_tokens(tok.tokenize(a), b, seq_length)
        ids = tok.convert_tokens_to_ids(tokens)
        pad = seq_length - len(ids)
        out["input_word_ids"].append(ids + [0] * pad)
        out["input_mask"].append([1] * len(ids) + [0] * pad)
        out["input_type_ids"].append(types + [0] * pad)
    return {k: np.array(v, np.int32).reshape(len(texts_a), seq_length) for k, v in out.items()}


def _assert_equal(got, expected):
    assert set(got) == {"input_word_ids", "input_mask", "input_type_ids"}
    for key, value in expected.items():
        assert got[key].dtype == tf.int32
        np.testing.assert_array_equal(got[key].numpy(), value, err_msg=key)


@pytest.mark.parametrize("tflite_compatible", [False, True])
@pytest.mark.parametrize("pair", [False, True])
def test_preprocessor_matches_google_rules(tflite_compatible, pair):
    pre = BertPreprocessor(VOCAB, seq_length=9, tflite_compatible=tflite_compatible)
    if pair:
        got = pre((tf.constant(TEXTS_A), tf.constant(TEXTS_B)))
    else:
        got = pre(tf.constant(TEXTS_A))
    _assert_equal(got, _reference(TEXTS_A, TEXTS_B if pair else None, 9))


@pytest.mark.parametrize("tflite_compatible", [False, True])
def test_empty_and_whitespace_lines_pack_as_cls_sep(tflite_compatible):
    pre = BertPreprocessor(VOCAB, seq_length=4, tflite_compatible=tflite_compatible)
    got = pre(tf.constant(["", " \t\n"]))
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), [[2, 3, 0, 0], [2, 3, 0, 0]])
    np.testing.assert_array_equal(got["input_mask"].numpy(), [[1, 1, 0, 0], [1, 1, 0, 0]])
    got = pre((tf.constant(["", "  "]), tf.constant(["\n", ""])))  # pairs: [CLS] [SEP] [SEP]
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), [[2, 3, 3, 0], [2, 3, 3, 0]])
    np.testing.assert_array_equal(got["input_mask"].numpy(), [[1, 1, 1, 0], [1, 1, 1, 0]])
    np.testing.assert_array_equal(got["input_type_ids"].numpy(), [[0, 0, 1, 0], [0, 0, 1, 0]])


@pytest.mark.parametrize("tflite_compatible", [False, True])
def test_zero_strings_batch(tflite_compatible):
    pre = BertPreprocessor(VOCAB, seq_length=5, tflite_compatible=tflite_compatible)
    empty = tf.constant([], dtype=tf.string)
    spec = tf.TensorSpec([None], tf.string)
    single = tf.function(lambda t: pre(t), input_signature=[spec])
    pair = tf.function(lambda a, b: pre((a, b)), input_signature=[spec, spec])
    for got in (pre(empty), pre([]), pre((empty, empty)), single(empty), pair(empty, empty)):
        assert set(got) == {"input_word_ids", "input_mask", "input_type_ids"}
        assert all(tuple(v.shape) == (0, 5) and v.dtype == tf.int32 for v in got.values())


@pytest.mark.parametrize("tflite_compatible", [False, True])
def test_long_texts_are_truncated_never_an_error(tflite_compatible):
    pre = BertPreprocessor(VOCAB, seq_length=6, tflite_compatible=tflite_compatible)
    long_text = "the cat sat " * 200
    texts_a, texts_b = [long_text, "unaffable " * 50], ["hello world", long_text]
    for got, expected in ((pre(tf.constant(texts_a)), _reference(texts_a, None, 6)),
                          (pre((tf.constant(texts_a), tf.constant(texts_b))),
                           _reference(texts_a, texts_b, 6))):
        ids = got["input_word_ids"].numpy()
        assert ids.shape == (2, 6)
        np.testing.assert_array_equal(ids[:, 0], [2, 2])  # [CLS]
        np.testing.assert_array_equal(ids[:, -1], [3, 3])  # ends with [SEP]
        np.testing.assert_array_equal(got["input_mask"].numpy(), np.ones((2, 6)))
        _assert_equal(got, expected)  # Google's truncation
    np.testing.assert_array_equal(ids, [[2, 8, 9, 3, 5, 3], [2, 11, 12, 3, 8, 3]])


def test_accepts_lists_and_numpy_arrays_of_strings():
    pre = BertPreprocessor(VOCAB, seq_length=6)
    texts = ["Hello, world!", "the cat"]
    expected = {k: v.numpy() for k, v in pre(tf.constant(texts)).items()}
    for value in (texts, tuple(texts), np.array(texts), np.array([t.encode() for t in texts]),
                  np.array(texts, dtype=object), [texts[0], texts[1].encode()]):
        _assert_equal(pre(value), expected)
    expected = {k: v.numpy() for k, v in pre((tf.constant(texts), tf.constant(texts))).items()}
    _assert_equal(pre((texts, np.array(texts))), expected)
    _assert_equal(pre((tf.constant(texts), texts)), expected)


@pytest.mark.parametrize("value, dtype", [
    (tf.constant([1, 2]), "int32"),
    (np.array([1.5, 2.5]), "float64"),
    ([1, 2, 3], "int64"),
    (np.array([1, "a"], dtype=object), "object"),
], ids=["int_tensor", "float_numpy", "int_list", "mixed_object_array"])
def test_non_string_inputs_raise_type_error(value, dtype):
    pre = BertPreprocessor(VOCAB, seq_length=6)
    with pytest.raises(TypeError, match=f"BertPreprocessor expects strings.*got dtype {dtype}"):
        pre(value)
    with pytest.raises(TypeError, match=f"BertPreprocessor expects strings.*got dtype {dtype}"):
        pre((tf.constant(["a", "b"]), value))


def test_non_string_keras_input_raises_type_error():
    with pytest.raises(TypeError, match="BertPreprocessor expects strings.*got dtype int32"):
        BertPreprocessor(VOCAB, seq_length=6)(keras.Input(shape=(), dtype="int32"))


def test_single_string_scalar_raises():
    with pytest.raises(ValueError, match=r"batch of texts.*pass \[text\]"):
        BertPreprocessor(VOCAB, seq_length=6)(tf.constant("hello"))


@pytest.mark.parametrize("tflite_compatible", [False, True])
def test_pair_batch_size_mismatch(tflite_compatible):
    pre = BertPreprocessor(VOCAB, seq_length=6, tflite_compatible=tflite_compatible)
    a, b = tf.constant(["hello", "world"]), tf.constant(["cat"])
    with pytest.raises(ValueError, match="same batch size, got 2 and 1"):
        pre((a, b))
    with pytest.raises(ValueError, match="same batch size, got 1 and 2"):
        pre.bert_pack_inputs([pre.tokenize(b), pre.tokenize(a)])
    with pytest.raises(ValueError, match="same batch size, got 2 and 1"):
        pre((keras.Input(shape=(), batch_size=2, dtype="string"),
             keras.Input(shape=(), batch_size=1, dtype="string")))
    # Unknown batch sizes (a tf.function): checked at run time, before packing.
    spec = tf.TensorSpec([None], tf.string)
    pair = tf.function(lambda x, y: pre((x, y)), input_signature=[spec, spec])
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        pair(a, b)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        pair(b, a)
    np.testing.assert_array_equal(pair(a, a)["input_word_ids"].numpy(),
                                  [[2, 5, 3, 5, 3, 0], [2, 6, 3, 6, 3, 0]])


def test_invalid_utf8_is_dropped_like_google():
    got = BertPreprocessor(VOCAB, seq_length=6)(tf.constant([b"hel\xfflo wor\xc3ld"]))
    # Google decodes with errors="ignore": the stray bytes vanish and the words rejoin.
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), [[2, 5, 6, 3, 0, 0]])


def test_one_megabyte_string():
    text = ("hello world " * 90_000)[:1_000_000]
    got = BertPreprocessor(VOCAB, seq_length=8)(tf.constant([text]))
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), [[2, 5, 6, 5, 6, 5, 6, 3]])


def test_seq_length_errors():
    with pytest.raises(ValueError, match="seq_length must be at least 2"):
        BertPreprocessor(VOCAB, seq_length=1)
    with pytest.raises(ValueError, match="seq_length must be at least 3 for a text pair"):
        BertPreprocessor(VOCAB, seq_length=2)((tf.constant(["a"]), tf.constant(["b"])))
    with pytest.raises(ValueError, match="seq_length=600 exceeds the model's "
                                         r"max_position_embeddings 512"):
        BertPreprocessor(VOCAB, seq_length=600, max_position_embeddings=512)


def test_vocab_missing_special_tokens(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(VocabError, match=r"vocab.txt.*\[CLS\].*\[SEP\].*\[MASK\]"):
        BertPreprocessor(str(path))
    with pytest.raises(VocabError, match=r"\[CLS\]"):
        BertPreprocessor(["[PAD]", "[UNK]", "hello"])


def test_bad_call_arguments():
    pre = BertPreprocessor(VOCAB, seq_length=6)
    with pytest.raises(ValueError, match="one or two text segments"):
        pre([tf.constant(["a"])] * 3)
    with pytest.raises(TypeError, match="not a dict"):
        pre({"text": tf.constant(["a"])})


def test_tokenize_and_bert_pack_inputs_halves():
    pre = BertPreprocessor(VOCAB, seq_length=10)
    a = pre.tokenize(tf.constant(["hello world", "the cat sat"]))
    b = pre.tokenize(tf.constant(["unaffable", "!"]))
    assert a.to_list() == [[5, 6], [8, 9, 10]]
    assert b.to_list() == [[11, 12, 13], [7]]
    packed = pre.bert_pack_inputs([a, b], seq_length=7)
    np.testing.assert_array_equal(packed["input_word_ids"].numpy(),
                                  [[2, 5, 6, 3, 11, 12, 3], [2, 8, 9, 10, 3, 7, 3]])
    np.testing.assert_array_equal(packed["input_type_ids"].numpy(),
                                  [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]])


def test_get_config_round_trip_and_keras_file(tmp_path):
    pre = BertPreprocessor(VOCAB, do_lower_case=False, seq_length=7, tflite_compatible=True)
    clone = BertPreprocessor.from_config(pre.get_config())
    assert (clone.vocab_tokens, clone.do_lower_case, clone.seq_length, clone.tflite_compatible) \
        == (VOCAB, False, 7, True)
    texts = tf.constant(["Hello world", "hello world"])
    _assert_equal(clone(texts), {k: v.numpy() for k, v in pre(texts).items()})
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, pre(inputs))
    model.save(tmp_path / "pre.keras")
    loaded = keras.models.load_model(tmp_path / "pre.keras")
    _assert_equal(loaded(texts), {k: v.numpy() for k, v in pre(texts).items()})


def test_in_tf_data_and_tf_function():
    pre = BertPreprocessor(VOCAB, seq_length=6)
    ds = tf.data.Dataset.from_tensor_slices((TEXTS_A, TEXTS_B)).batch(2).map(
        lambda a, b: pre((a, b)))
    rows = np.concatenate([batch["input_word_ids"].numpy() for batch in ds])
    np.testing.assert_array_equal(rows, _reference(TEXTS_A, TEXTS_B, 6)["input_word_ids"])
    fn = tf.function(lambda t: pre(t), input_signature=[tf.TensorSpec([None], tf.string)])
    _assert_equal(fn(tf.constant(TEXTS_A)), _reference(TEXTS_A, None, 6))


def test_in_a_saved_model_with_an_encoder(tmp_path):
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
    encoder = BertEncoder(config)
    pre = BertPreprocessor(VOCAB, seq_length=8)

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.pre, self.encoder = pre, encoder
            self.tf_vars = [v.value for v in encoder.variables]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, text):
            return self.encoder(self.pre(text), training=False)["pooled_output"]

    module = Module()
    texts = tf.constant(["hello world", "the cat sat"])
    expected = module.serve(texts).numpy()
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.serve(texts).numpy(), expected, atol=1e-6)


# ----------------------------------------------------------------------------- tokenize CLI
def test_tokenize_file_pieces_and_ids(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"Hello, world!\n\n  \nunaffable caT\xff\n")
    tokenizer = BertTokenizer(VOCAB, do_lower_case=True)
    assert tokenize_file(tokenizer, tmp_path / "in.txt", tmp_path / "out.txt") == 4
    assert (tmp_path / "out.txt").read_text() == "hello , world !\n\n\nun ##aff ##able cat\n"
    tokenize_file(tokenizer, tmp_path / "in.txt", tmp_path / "ids.txt", ids=True)
    assert (tmp_path / "ids.txt").read_text() == "5 14 6 7\n\n\n11 12 13 9\n"


def test_tokenize_cli_end_to_end_and_missing_input(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    (tmp_path / "in.txt").write_text("The cat sat.\n")
    cmd = [sys.executable, "-m", "bert_tf.cli.tokenize", f"--vocab_file={vocab}",
           f"--output_file={tmp_path / 'out.txt'}"]
    ok = subprocess.run(cmd + [f"--input_file={tmp_path / 'in.txt'}"], capture_output=True,
                        text=True, timeout=300, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out.txt").read_text() == "the cat sat .\n"
    bad = subprocess.run(cmd + [f"--input_file={tmp_path / 'nope.txt'}"], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert f"--input_file not found: {tmp_path / 'nope.txt'}" in bad.stderr


# ----------------------------------------------------------------------------- build_vocab
CORPUS = ["The quick brown fox jumps over the lazy dog.",
          "Jumping foxes are quicker than lazy dogs!",
          "Über café, naïve résumé — déjà vu."] * 30


def test_build_vocab_special_tokens_first_and_tokenizes_corpus(tmp_path):
    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS) + "\n")
    vocab = build_vocab_file(str(tmp_path / "corpus.txt"), str(tmp_path / "vocab.txt"),
                             vocab_size=120, do_lower_case=True, processes=1)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) <= 120 and len(set(vocab)) == len(vocab)
    assert (tmp_path / "vocab.txt").read_text().splitlines() == vocab
    assert "the" in vocab and "lazy" in vocab and "##s" in vocab
    assert not any(c.isupper() for t in vocab[5:] for c in t)  # uncased, accents stripped
    tok = FullTokenizer(str(tmp_path / "vocab.txt"))
    pieces = [p for line in CORPUS[:3] for p in tok.tokenize(line)]
    assert "[UNK]" not in pieces  # every character of the corpus is covered


def test_build_vocab_cased_keeps_case_and_parallel_count_matches():
    serial = count_words(CORPUS, do_lower_case=False, processes=1)
    parallel = count_words(CORPUS, do_lower_case=False, processes=2)
    assert serial == parallel and serial["The"] == 30 and serial["Über"] == 30
    vocab = learn_vocab(serial, vocab_size=150)
    assert "The" in vocab or "T" in vocab


def test_build_vocab_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="matched no files"):
        build_vocab_file(str(tmp_path / "none*.txt"), str(tmp_path / "v.txt"), 100, True)
    with pytest.raises(ValueError, match="vocab_size must exceed the 5 special tokens"):
        learn_vocab(count_words(CORPUS, True, 1), vocab_size=5)
    with pytest.raises(ValueError, match="no words"):
        learn_vocab(count_words(["", "   "], True, 1), vocab_size=50)


def _zipf_counts(num_words=400, seed=0) -> collections.Counter:
    rng = random.Random(seed)
    words = {"".join(rng.choice("abcdefghijkl") for _ in range(rng.randint(2, 9)))
             for _ in range(num_words)}
    return collections.Counter({w: 1 + 2000 // (rank + 1) for rank, w in enumerate(sorted(words))})


@pytest.mark.parametrize("min_frequency", [1, 2])
def test_learn_vocab_gives_the_largest_vocab_within_vocab_size(min_frequency):
    # Before: the learner's own search overshot (an error claiming the alphabet did not fit)
    # or stopped far below the target (5,849 tokens for --vocab_size=7000 on the demo corpus).
    counts = _zipf_counts()
    everything = learn_vocab(counts, vocab_size=100_000, min_frequency=min_frequency)
    alphabet = 5 + 2 * len({c for w in counts for c in w})
    for vocab_size in sorted({alphabet + 1, (alphabet + len(everything)) // 2,
                              len(everything) - 1, len(everything) + 10}):
        vocab = learn_vocab(counts, vocab_size=vocab_size, min_frequency=min_frequency)
        assert len(vocab) == min(vocab_size, len(everything)), vocab_size
        assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        assert len(set(vocab)) == len(vocab)
        assert {c for w in counts for c in w} | {"##" + c for w in counts for c in w} <= set(vocab)
    with pytest.raises(InputError, match=f"--vocab_size={alphabet - 1} is too small .* "
                                         f"alphabet alone .* needs {alphabet} tokens"):
        learn_vocab(counts, vocab_size=alphabet - 1, min_frequency=min_frequency)


def test_normalizer_model_disk_cache(tmp_path, monkeypatch):
    from bert_tf.text import tokenizer

    monkeypatch.setenv("BERT_TF_CACHE_DIR", str(tmp_path))
    tokenizer.build_normalizer_model.cache_clear()
    built = tokenizer.build_normalizer_model(False)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("normalizer-cased-")
    assert files[0].read_bytes().endswith(built)  # after a length + SHA-256 header
    tokenizer.build_normalizer_model.cache_clear()
    assert tokenizer.build_normalizer_model(False) == built  # read back from disk
    monkeypatch.setenv("BERT_TF_CACHE_DIR", "")
    tokenizer.build_normalizer_model.cache_clear()
    assert tokenizer.build_normalizer_model(False) == built  # cache disabled: rebuilt, same bytes
    tokenizer.build_normalizer_model.cache_clear()
