"""Words with offsets: Google's basic tokens located in the raw text (code points and bytes)."""
from __future__ import annotations

import pytest
import tensorflow as tf

from bert_tf import BertTokenizer
from bert_tf.text.python_tokenizer import basic_tokenize
from bert_tf.text.word_offsets import words_with_offsets

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]
TEXTS = ["Héllo, 中国 World!", "", "   ", "ΟΔΟΣ a\u200bb  İstanbul\tx\u00a0y", "naïve CAFÉ's U.S.",
         "日本語テキスト 東京", "emoji 😀 end", "a\x00b\ufffdc"]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_words_are_googles_basic_tokens_and_offsets_slice_them(do_lower_case):
    tokenizer = BertTokenizer(VOCAB, do_lower_case=do_lower_case)
    out = words_with_offsets(tokenizer, tf.constant(TEXTS))
    assert out.text.numpy().tolist() == [t.encode() for t in TEXTS]
    for i, text in enumerate(TEXTS):
        words = [w.decode() for w in out.words[i].numpy()]
        assert words == basic_tokenize(text, do_lower_case), text
        raw = text.encode()
        for word, cs, ce, bs, be in zip(words, *(x[i].numpy() for x in (
                out.char_start, out.char_end, out.byte_start, out.byte_end))):
            piece = text[cs:ce]
            assert raw[bs:be].decode() == piece
            # The slice of the original is exactly the word (after Google's normalization).
            assert basic_tokenize(piece, do_lower_case) == [word], (text, piece, word)


def test_invalid_utf8_is_dropped_before_counting():
    tokenizer = BertTokenizer(VOCAB, do_lower_case=True)
    out = words_with_offsets(tokenizer, tf.constant([b"ab\xff cd"]))
    assert out.text.numpy().tolist() == [b"ab cd"]
    assert out.char_start[0].numpy().tolist() == [0, 3]
    assert out.char_end[0].numpy().tolist() == [2, 5]
