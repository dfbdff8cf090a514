"""Google's basic-tokenizer words of raw texts, with their offsets in the texts, in the graph.

`BertTokenizer` maps text to WordPiece ids; token classification and question answering also
need to know where each word came from, to return entities or answers as spans of the user's
string. This module runs the tokenizer's own normalizer with offset tracking
(`FastBertNormalizer.normalize_with_offsets`), splits the normalized text into words with tf-text's
`WhitespaceTokenizer.tokenize_with_offsets`, and maps each word back to the original text.

Words are Google's basic tokens: split on whitespace, every punctuation character alone, every
CJK character alone (so in Chinese text each character is a word). Offsets are given in Unicode
code points (Python `str` indices; what a REST/JSON user slices with) and in UTF-8 bytes, both
with an exclusive end. Bytes that are not valid UTF-8 are dropped first, as the tokenizer drops
them; the offsets then index the cleaned text, which is returned too (for valid UTF-8 it is the
input itself).
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf
import tensorflow_text as tf_text

_NO_CHAR = tf.int64.max  # pads the character-start table so searchsorted never stops there


@dataclasses.dataclass
class WordOffsets:
    """Words of a batch of texts and where they are in the (cleaned) texts.

    Attributes:
        text: string [B], the texts after dropping ill-formed UTF-8 (the offsets index these).
        words: string RaggedTensor [B, (W)], the normalized words (what `tokenize` sees).
        char_start, char_end: int64 RaggedTensor [B, (W)], code-point offsets (end exclusive).
        byte_start, byte_end: int64 RaggedTensor [B, (W)], UTF-8 byte offsets (end exclusive).
    """

    text: tf.Tensor
    words: tf.RaggedTensor
    char_start: tf.RaggedTensor
    char_end: tf.RaggedTensor
    byte_start: tf.RaggedTensor
    byte_end: tf.RaggedTensor


def words_with_offsets(tokenizer, texts: tf.Tensor) -> WordOffsets:
    """Splits texts into Google's basic tokens and locates each one in its text.

    Args:
        tokenizer: the `bert_tf.BertTokenizer` of the model (its normalizer decides casing,
            accent stripping and which characters are punctuation/CJK/deleted).
        texts: string [B].

    Returns:
        WordOffsets; `tokenizer.tokenize(text[char_start:char_end])` equals
        `tokenizer.tokenize(word)` for every word.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    text = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="ignore",
                                        replace_control_characters=False)
    normalized, offsets = tokenizer.normalize_with_offsets(text)
    words, starts, ends = tf_text.WhitespaceTokenizer().tokenize_with_offsets(normalized)
    # offsets[b][i]: the byte in the original where normalized byte i came from. A word's last
    # byte comes from the original character that ends the word.
    row = tf.cast(words.value_rowids(), tf.int64)
    base = tf.gather(offsets.row_splits, row)
    byte_start = tf.gather(offsets.values, base + tf.cast(starts.values, tf.int64))
    last_byte = tf.gather(offsets.values, base + tf.cast(ends.values, tf.int64) - 1)

    # Code-point index of every byte offset: searchsorted in each text's character starts.
    _, char_starts = tf.strings.unicode_decode_with_offsets(text, "UTF-8")
    lengths = tf.strings.length(text, unit="BYTE")
    table = tf.concat([char_starts, tf.expand_dims(tf.cast(lengths, tf.int64), 1)], axis=1)
    dense = table.to_tensor(_NO_CHAR)  # [B, C + 1]: character starts, then the text's end
    batch = tf.shape(text, tf.int64)[0]
    queries = tf.RaggedTensor.from_value_rowids(
        tf.stack([byte_start, last_byte], axis=1), row, nrows=batch).to_tensor(-1)  # [B, W, 2]
    flat_queries = tf.reshape(queries, tf.stack([batch, 2 * tf.shape(queries, tf.int64)[1]]))
    found = tf.searchsorted(dense, flat_queries, side="right")  # [B, 2 * W]
    found = tf.RaggedTensor.from_tensor(tf.reshape(found, tf.shape(queries, tf.int64)),
                                        lengths=words.row_lengths())
    char_start = tf.cast(found.values[:, 0], tf.int64) - 1
    char_end = tf.cast(found.values[:, 1], tf.int64)  # one past the last byte's character
    byte_end = tf.gather_nd(dense, tf.stack([row, char_end], axis=1))

    def ragged(values):
        return words.with_values(values)

    return WordOffsets(text, words, ragged(char_start), ragged(char_end), ragged(byte_start),
                       ragged(byte_end))
