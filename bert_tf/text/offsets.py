"""WordPiece tokenization with the character span of every piece in the raw input string.

`tokenize_with_char_offsets(tokenizer, strings)` returns the same ids as
`BertTokenizer.tokenize` plus, for each piece, `[start, end)` in **Unicode code points** of the
original string (Python `str` indexing; what a REST/JSON client slices with). It runs the
tokenizer's own ops in their offset-returning form:

1. `FastBertNormalizer.normalize_with_offsets` (Google's per-character map; each normalized
   byte knows the byte of the original character it comes from);
2. `WhitespaceTokenizer.tokenize_with_offsets` (words, in normalized bytes);
3. `FastWordpieceTokenizer.tokenize_with_offsets` (pieces, in bytes of their word); a word of
   more than 200 characters is one `[UNK]` spanning the whole word, as in `BertTokenizer`.

A piece's start is the original character of its first normalized byte and its end follows the
original character of its last byte, so an accent stripped by lower-casing ("é" → "e") or
punctuation the normalizer spaced out maps back to exactly the characters of the input.
Inputs must be valid UTF-8 (every JSON string is): invalid bytes would shift the offsets, so they
fail with an InvalidArgumentError instead of giving wrong spans. Not TFLite-compatible (ragged
ops); the serving graphs use it.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.text.tokenizer import MAX_CHARS_PER_WORD, BertTokenizer


def _char_index_of_bytes(strings: tf.Tensor) -> tf.RaggedTensor:
    """[B, (bytes + 1)]: the code-point index of the character holding each byte, then the
    string's length in code points (the index one past the end)."""
    data = tf_text.ByteSplitter().split(strings)  # [B, (bytes)] uint8
    values = tf.cast(data.flat_values, tf.int32)
    is_lead = tf.cast(tf.logical_or(values < 0x80, values >= 0xC0), tf.int64)
    is_lead = data.with_flat_values(is_lead)
    ends = tf.expand_dims(tf.reduce_sum(is_lead, axis=1), 1)
    return tf.concat([tf.cumsum(is_lead, axis=1) - 1, ends], axis=1)


def tokenize_with_char_offsets(tokenizer: BertTokenizer, strings: tf.Tensor
                               ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """Ids and character spans of the WordPiece tokens of a [B] string tensor.

    Args:
      tokenizer: the model's `BertTokenizer`.
      strings: string tensor [B], valid UTF-8.

    Returns:
      (ids int32 [B, (P)], starts int64 [B, (P)], ends int64 [B, (P)]): `ids` equal
      `tokenizer.tokenize(strings)`; piece j of row b covers the code points
      `[starts[b, j], ends[b, j])` of `strings[b]`.
    """
    strings = tf.convert_to_tensor(strings, tf.string)
    checked = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="ignore",
                                           replace_control_characters=False)
    with tf.control_dependencies([tf.debugging.assert_equal(
            tf.strings.length(checked), tf.strings.length(strings),
            message="the input must be valid UTF-8 to return character offsets")]):
        text = tf.identity(strings)
    normalized, norm_to_orig = tokenizer.normalize_with_offsets(text)
    words, word_starts, _ = tokenizer._word_splitter.tokenize_with_offsets(normalized)
    flat_words = words.flat_values
    pieces, piece_starts, piece_ends = tokenizer._wordpiece.tokenize_with_offsets(flat_words)

    # Words over 200 characters become one [UNK] over the whole word (see BertTokenizer).
    lengths = tf.strings.length(flat_words, unit="UTF8_CHAR")
    too_long = lengths > MAX_CHARS_PER_WORD
    keep = tf.logical_and(tf.ones_like(pieces, tf.bool), tf.expand_dims(~too_long, 1))
    n_long = tf.cast(too_long, tf.int64)
    long_ids = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(n_long)], tf.constant(tokenizer.unk_id, tf.int32)), n_long)
    long_starts = tf.RaggedTensor.from_row_lengths(
        tf.zeros([tf.reduce_sum(n_long)], tf.int64), n_long)
    long_ends = tf.RaggedTensor.from_row_lengths(
        tf.boolean_mask(tf.cast(tf.strings.length(flat_words), tf.int64), too_long), n_long)
    ids = tf.concat([tf.ragged.boolean_mask(pieces, keep), long_ids], axis=1)
    starts = tf.concat([tf.ragged.boolean_mask(piece_starts, keep), long_starts], axis=1)
    ends = tf.concat([tf.ragged.boolean_mask(piece_ends, keep), long_ends], axis=1)

    # Piece bytes → normalized-string bytes → original bytes → original code points.
    word_base = tf.expand_dims(tf.cast(word_starts.flat_values, tf.int64), 1)
    starts, ends = tf.cast(starts, tf.int64), tf.cast(ends, tf.int64)
    row_of_piece = tf.gather(words.value_rowids(), ids.value_rowids())
    first_byte = (starts + word_base).flat_values
    last_byte = (ends + word_base).flat_values - 1
    chars = _char_index_of_bytes(strings)
    orig_first = tf.gather_nd(norm_to_orig, tf.stack([row_of_piece, first_byte], axis=1))
    orig_last = tf.gather_nd(norm_to_orig, tf.stack([row_of_piece, last_byte], axis=1))
    char_start = tf.gather_nd(chars, tf.stack([row_of_piece, orig_first], axis=1))
    char_end = tf.gather_nd(chars, tf.stack([row_of_piece, orig_last], axis=1)) + 1
    splits = tf.gather(ids.row_splits, words.row_splits)
    as_rows = lambda values: tf.RaggedTensor.from_row_splits(values, splits,  # noqa: E731
                                                             validate=False)
    return as_rows(ids.flat_values), as_rows(char_start), as_rows(char_end)
