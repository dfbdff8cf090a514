"""bert_tf.text.offsets: same ids as BertTokenizer, and every piece's character span really holds
that piece (checked through Google's Python normalisation of the span)."""
from __future__ import annotations

import pytest
import tensorflow as tf
from shared_data import GOOGLE_CKPT_INDEX
from tokenizer_corpus import corpus_lines

from bert_tf.text.offsets import tokenize_with_char_offsets
from bert_tf.text.python_tokenizer import basic_tokenize
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab, load_vocab

UNCASED_VOCAB = GOOGLE_CKPT_INDEX / "uncased_L-4_H-256_A-4" / "vocab.txt"
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cafe", "caf", "##e", "##s",
          "is", "paris", ",", ".", "x", "b"]


def _check(tokenizer, texts):
    ids, starts, ends = tokenize_with_char_offsets(tokenizer, tf.constant(texts))
    assert ids.to_list() == tokenizer.tokenize(tf.constant(texts)).to_list()
    tokens = tokenizer.vocab.tokens
    checked = 0
    for text, row, row_starts, row_ends in zip(texts, ids.to_list(), starts.to_list(),
                                               ends.to_list()):
        assert row_starts == sorted(row_starts) and all(0 <= s for s in row_starts)
        assert all(e <= len(text) for e in row_ends)
        for i, (token_id, start, end) in enumerate(zip(row, row_starts, row_ends)):
            assert start < end
            token = tokens[token_id]
            if token == "[UNK]":
                continue
            span = "".join(basic_tokenize(text[start:end], tokenizer.do_lower_case))
            # A span cut out of its word loses the final-sigma context of str.lower().
            span, piece = span.replace("ς", "σ"), token.removeprefix("##").replace("ς", "σ")
            # A character that decomposes into several (NFD Hangul) can hold several pieces.
            assert span == piece or (end - start == 1 and piece in span), (
                text, i, token, text[start:end])
            checked += 1
    return checked


def test_small_vocab_edge_cases():
    texts = ["Café  is, Paris's.", "", "  ", "cafes x " + "a" * 250 + " b", "日本 the\u00a0x\tb",
             "\u00c9\u0301 x"]
    for lower in (True, False):
        tokenizer = BertTokenizer(Vocab(TOKENS), do_lower_case=lower)
        _check(tokenizer, texts)
        ids, starts, ends = tokenize_with_char_offsets(tokenizer, tf.constant(texts))
        row = list(zip(ids[3].numpy(), starts[3].numpy(), ends[3].numpy()))
        # "cafes" → cafe ##s; the 250-character word is one [UNK] over all of it.
        assert [(int(s), int(e)) for _, s, e in row] == [(0, 4), (4, 5), (6, 7), (8, 258),
                                                         (259, 260)]
    empty = tokenize_with_char_offsets(BertTokenizer(Vocab(TOKENS), True),
                                       tf.constant([], tf.string))
    assert empty[0].shape[0] == 0


def test_invalid_utf8_is_refused():
    with pytest.raises(tf.errors.InvalidArgumentError, match="valid UTF-8"):
        tokenize_with_char_offsets(BertTokenizer(Vocab(TOKENS), True), tf.constant([b"a\xffb"]))


@pytest.mark.skipif(not UNCASED_VOCAB.exists(), reason="Google uncased vocab not available")
def test_tokenizer_corpus_google_vocab():
    lines = corpus_lines(400)
    lines = [line for line in lines if "\ufffd" not in line]
    checked = _check(BertTokenizer(load_vocab(str(UNCASED_VOCAB)), do_lower_case=True), lines)
    assert checked > 3000
