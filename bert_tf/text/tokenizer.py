"""In-graph WordPiece tokenizer that reproduces Google's BERT tokenization.

:class:`BertTokenizer` runs entirely in the TensorFlow graph (``tf.function``, ``tf.data``,
SavedModel) and, with ``tflite_compatible=True``, converts to TFLite with builtin ops plus tf-text's
custom ops. It produces the same WordPiece ids as Google's ``tokenization.FullTokenizer`` (our
:class:`bert_tf.text.python_tokenizer.FullTokenizer`), for cased and uncased vocabularies.

How it works
------------
tf-text's stock ``FastBertNormalizer`` + ``FastWordpieceTokenizer`` pipeline follows tf-text's own
BERT rules, which differ from Google's Python rules in several ways (control characters become
spaces instead of being deleted, lower-casing applies NFKC case folding, words are limited to 100
bytes instead of 200 characters, ...). Instead of patching the output, this module keeps the
TFLite-capable ops and changes what they are fed:

1. **Normalization** uses ``FastBertNormalizer`` with a model built by
   :mod:`bert_tf.text.normalizer` (not by tf-text). That
   op is a pure per-code-point string map stored in a double-array trie; the map built here is
   Google's rule for every code point: delete NUL, U+FFFD and every category ``C*`` character
   except tab/newline/CR (this includes unassigned and private-use code points, as in Google's
   code); whitespace (space, tab, newline, CR, ``Zs`` and the line/paragraph separators that
   Python's ``str.split`` splits on) becomes a space; CJK ideographs and punctuation (Google's
   definition: ASCII symbols + Unicode ``P*``) are surrounded by spaces; and, when lower-casing,
   each character becomes ``NFD(ch.lower())`` without ``Mn`` marks (no NFKC). Invalid UTF-8 is
   handled like Python's ``bytes.decode("utf-8", "ignore")``: every maximal ill-formed byte
   sequence (the unit the op steps over) maps to the empty string.
2. **Words** are split on spaces with tf-text's ``WhitespaceTokenizer`` (after step 1 the only
   whitespace left is U+0020, so its ICU whitespace definition no longer matters).
3. **WordPiece** is ``FastWordpieceTokenizer(no_pretokenization=True)`` (one word per input, a
   byte limit that never binds for words of at most 200 characters). Its result equals Google's
   greedy longest-match-first, with ``[UNK]`` for the whole word when a position cannot match.
4. **Long words**: the pieces of a word longer than 200 characters (counted from its UTF-8 lead
   bytes, with ``ByteSplitter`` and cumulative sums) are replaced by one ``[UNK]``, using plain
   integer ops (cumsum/gather/scatter) that TFLite runs as builtins.

For cased vocabularies (``do_lower_case=False``) both modes build the same graph; for uncased
ones the default mode adds the final-sigma fix below.

Remaining differences (measured in ``tests/test_text_tokenizer.py``):

* Final sigma (lower-casing only): Python's ``str.lower()`` maps a capital sigma at the end of a
  word to ``ς`` and elsewhere to ``σ``, which a per-character map cannot express. The default
  mode fixes it with a regular expression (``tf.strings.regex_replace``, after
  ``tf.strings.unicode_transcode`` drops ill-formed UTF-8; TFLite runs neither without Flex);
  ``tflite_compatible=True`` always produces ``σ``.
* NFD's canonical reordering is not reproduced (lower-casing only): it only matters for two
  adjacent spacing combining marks (category ``Mc``, such as the musical symbols U+1D165..U+1D172
  or the Hangul tone marks U+302E/U+302F) with different combining classes.
* Vocabulary entries longer than 256 bytes are not supported by ``FastWordpieceTokenizer``
  (none in Google's vocabularies); they are replaced by never-matching placeholders.

The character tables come from Python's :mod:`unicodedata` (as the reference does), so the
tokenizer follows the Unicode version of the Python that builds it (Python 3.11: Unicode 14.0;
characters assigned later count as unassigned and are deleted, exactly as Google's code does
under that Python). The built model is stored in the graph, so a SavedModel or TFLite file keeps
the tables it was built with.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.errors import InputError
from bert_tf.text import python_tokenizer as _ref
from bert_tf.text.normalizer import build_normalizer_model
from bert_tf.text.vocab import UNK_TOKEN, Vocab, load_vocab

__all__ = ["BertTokenizer", "MAX_CHARS_PER_WORD", "build_normalizer_model"]

MAX_CHARS_PER_WORD = _ref.MAX_INPUT_CHARS_PER_WORD  # 200, Google's max_input_chars_per_word
_SUFFIX = "##"
# UTF-8 needs at most 4 bytes per character, so a word of <= 200 characters has <= 800 bytes;
# longer words are replaced by the unknown token before FastWordpieceTokenizer sees them.
_MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD
# FastWordpieceTokenizer stores token lengths in 8 bits.
_MAX_VOCAB_TOKEN_BYTES = 256

_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"


# --------------------------------------------------------------------------------------------
# Final sigma (default mode, lower-casing only)
# --------------------------------------------------------------------------------------------


def _ranges(cps: Sequence[int]) -> str:
    """An RE2 character-class body for a sorted list of code points."""
    parts = []
    i = 0
    n = len(cps)
    while i < n:
        j = i
        while j + 1 < n and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        parts.append(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}")
        i = j + 1
    return "".join(parts)


@functools.lru_cache(maxsize=1)
def _final_sigma_pattern() -> str:
    """RE2 pattern matching a capital sigma that Python's ``str.lower()`` turns into ``ς``.

    CPython lower-cases U+03A3 to U+03C2 when the nearest non-case-ignorable character before
    it is cased and the nearest non-case-ignorable character after it (within the word) is not.
    The classes are probed from ``str.lower`` itself, so they match the running Python. Google
    deletes control/format/unassigned characters before lower-casing, so those are skipped too,
    like case-ignorable ones. Word boundaries need no special case: whitespace and CJK
    ideographs are neither cased nor case-ignorable.
    Groups: 1 = context before, 2 = skippable run after, 3 = the following character or empty.
    """
    cased, skip = [], []
    category = unicodedata.category
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if (category(ch)[0] == "C" and cp not in (9, 10, 13)) or cp == 0xFFFD:
            skip.append(cp)  # deleted by Google's cleaning step before lower-casing
        elif f"1{ch}{_SIGMA}".lower()[-1] == _FINAL_SIGMA:
            cased.append(cp)  # cased and not case-ignorable
        elif f"\u0391{ch}{_SIGMA}".lower()[-1] == _FINAL_SIGMA:
            skip.append(cp)  # case-ignorable
    c, s = _ranges(cased), _ranges(sorted(skip))
    return f"([{c}][{s}]*){_SIGMA}([{s}]*)([^{c}{s}]|$)"


# --------------------------------------------------------------------------------------------
# The tokenizer
# --------------------------------------------------------------------------------------------


def _as_vocab(vocab: Vocab | str | os.PathLike[str] | Sequence[str]) -> Vocab:
    if isinstance(vocab, Vocab):
        return vocab
    if isinstance(vocab, (str, os.PathLike)):
        return load_vocab(vocab, required_special_tokens=(UNK_TOKEN,))
    return Vocab(list(vocab))


def _wordpiece_vocab(tokens: Sequence[str], token_to_id: dict[str, int]) -> list[str]:
    """The token list for FastWordpieceTokenizer, with ids preserved.

    Entries that can never be produced by Google's tokenizer, or that the op cannot store, are
    replaced by distinct placeholders that no word can contain (they start with U+0001, which
    the normalizer deletes): empty lines, all but the last copy of a duplicated token (Google's
    dict keeps the last id) and tokens longer than 256 bytes.
    """
    out = []
    for index, token in enumerate(tokens):
        if (not token or token_to_id.get(token) != index
                or len(token.encode("utf-8")) > _MAX_VOCAB_TOKEN_BYTES):
            token = f"\x01{index}"
        out.append(token)
    return out


class BertTokenizer(tf.Module):
    """In-graph tokenizer: strings -> WordPiece ids, identical to Google's ``FullTokenizer``.

    Args:
      vocab: a :class:`Vocab`, the path of a ``vocab.txt`` or a list of tokens (id = index). It
        must contain ``[UNK]``.
      do_lower_case: lower-case and strip accents (uncased models) or not (cased models).
      tflite_compatible: build the graph only from ops that convert to TFLite with builtins and
        tf-text's custom ops (no Flex). This drops the final-sigma fix (see module docstring).

    ``tokenize`` takes a string tensor of shape ``[batch]`` (or a scalar, or any dense shape)
    and returns int32 ids as a ``RaggedTensor`` ``[batch, (pieces)]`` (a 1-D tensor for a scalar,
    an extra ragged dimension for higher ranks). Input bytes that are not valid UTF-8 are dropped,
    like Google's ``decode("utf-8", "ignore")``.
    """

    def __init__(
        self,
        vocab: Vocab | str | os.PathLike[str] | Sequence[str],
        do_lower_case: bool,
        tflite_compatible: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._vocab = _as_vocab(vocab)
        if UNK_TOKEN not in self._vocab:
            raise InputError(f"the vocabulary has no {UNK_TOKEN!r} token")
        self._do_lower_case = bool(do_lower_case)
        self._tflite_compatible = bool(tflite_compatible)
        self._unk_id = self._vocab.id(UNK_TOKEN)
        self._normalizer = tf_text.FastBertNormalizer(
            model_buffer=build_normalizer_model(self._do_lower_case))
        self._word_splitter = tf_text.WhitespaceTokenizer()
        self._byte_splitter = tf_text.ByteSplitter()
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=_wordpiece_vocab(self._vocab.tokens, self._vocab.token_to_id),
            suffix_indicator=_SUFFIX,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=UNK_TOKEN,
            no_pretokenization=True,
        )
        self._sigma_pattern = (
            _final_sigma_pattern() if self._do_lower_case and not self._tflite_compatible else None)
        self._vocab_table = tf.constant(self._vocab.tokens, dtype=tf.string)

    # ---- properties ---------------------------------------------------------------------------

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def do_lower_case(self) -> bool:
        return self._do_lower_case

    @property
    def tflite_compatible(self) -> bool:
        return self._tflite_compatible

    @property
    def cls_id(self) -> int:
        return self._vocab.cls_id

    @property
    def sep_id(self) -> int:
        return self._vocab.sep_id

    @property
    def pad_id(self) -> int:
        return self._vocab.pad_id

    @property
    def mask_id(self) -> int:
        return self._vocab.mask_id

    @property
    def unk_id(self) -> int:
        return self._unk_id

    # ---- tokenization -------------------------------------------------------------------------

    def normalize(self, strings: tf.Tensor) -> tf.Tensor:
        """Google's text cleaning, CJK/punctuation spacing and (if uncased) lower-casing.

        Returns strings of the same shape in which the words are separated by single or
        multiple U+0020 spaces (a debugging aid; ``tokenize`` uses it internally).
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if self._sigma_pattern is not None:
            # RE2 cannot match across ill-formed UTF-8, so drop it first (the normalizer would
            # drop it anyway, exactly like Python's decode(errors="ignore")).
            strings = tf.strings.unicode_transcode(
                strings, "UTF-8", "UTF-8", errors="ignore", replace_control_characters=False)
        return self._normalizer.normalize(self._fix_final_sigma(strings))

    def normalize_with_offsets(self, strings: tf.Tensor) -> tuple[tf.Tensor, tf.RaggedTensor]:
        """`normalize` plus, for every byte of each result, the input byte it comes from.

        The entry point for code that maps tokens back into the user's text (token
        classification and question answering serving), so that they normalize exactly as
        ``tokenize`` does.

        Args:
          strings: string [B], valid UTF-8 (ill-formed bytes would shift the offsets: callers
            drop or reject them first).

        Returns:
          (normalized string [B], int64 RaggedTensor [B, (bytes + 1)]): entry i of row b is the
          byte of `strings[b]` that normalized byte i comes from; the last entry is the length
          of `strings[b]` in bytes.
        """
        # Capital and final sigma are both 2 bytes in UTF-8, so the offsets stay valid.
        strings = self._fix_final_sigma(tf.convert_to_tensor(strings, dtype=tf.string))
        normalized, offsets = self._normalizer.normalize_with_offsets(strings)
        return normalized, tf.cast(offsets, tf.int64)

    def _fix_final_sigma(self, strings: tf.Tensor) -> tf.Tensor:
        """Lower-casing mode: a word-final capital sigma becomes "ς" as Python's lower() does
        (the normalizer alone would give "σ"); a no-op otherwise."""
        if self._sigma_pattern is None:
            return strings
        return tf.strings.regex_replace(strings, self._sigma_pattern,
                                        "\\1" + _FINAL_SIGMA + "\\2\\3")

    def tokenize(self, strings) -> tf.RaggedTensor | tf.Tensor:
        """Returns the WordPiece ids (int32) of each string; see the class docstring."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        rank = strings.shape.rank
        if rank is None:
            raise ValueError("tokenize needs an input of known rank")
        if rank == 1:
            return self._tokenize_batch(strings)
        if rank == 0:
            return self._tokenize_batch(tf.reshape(strings, [1])).flat_values
        flat = self._tokenize_batch(tf.reshape(strings, [-1]))
        dims = tf.shape(strings, out_type=tf.int64)
        result = flat
        for axis in range(rank - 1, 0, -1):
            result = tf.RaggedTensor.from_uniform_row_length(result, dims[axis], validate=False)
        return result

    def tokenize_to_pieces(self, strings) -> tf.RaggedTensor | tf.Tensor:
        """Like ``tokenize`` but returns the vocabulary strings of the pieces."""
        ids = self.tokenize(strings)
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(tf.gather(self._vocab_table, ids.flat_values))
        return tf.gather(self._vocab_table, ids)

    def _tokenize_batch(self, strings: tf.Tensor) -> tf.RaggedTensor:
        # Only ops that TFLite runs as builtins or tf-text custom ops (int32/int64 arithmetic,
        # no string selects, no ragged kernels) are used below, in both modes.
        normalized = self.normalize(strings)
        words = self._word_splitter.tokenize(normalized)  # [batch, (words)], no empty words
        flat_words = words.flat_values
        pieces = self._wordpiece.tokenize(flat_words)  # [words, (pieces)], >= 1 piece per word

        # Characters per word = UTF-8 lead bytes (bytes not of the form 10xxxxxx).
        word_bytes = self._byte_splitter.split(flat_words)  # [words, (bytes)] uint8
        byte_values = tf.cast(word_bytes.flat_values, tf.int32)
        byte_splits = word_bytes.row_splits
        is_lead = tf.cast(tf.logical_or(byte_values < 0x80, byte_values >= 0xC0), tf.int64)
        lead_cumsum = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(is_lead)], axis=0)
        chars = tf.gather(lead_cumsum, byte_splits[1:]) - tf.gather(lead_cumsum, byte_splits[:-1])
        too_long = chars > MAX_CHARS_PER_WORD

        # A word of more than 200 characters becomes one [UNK] (FastWordpieceTokenizer only
        # knows a byte limit): rebuild the flat pieces with such words' pieces replaced.
        # Every word has >= 1 piece, so the words' first output positions are distinct and a
        # cumulative sum of "word starts here" marks gives the word of each output position.
        # All per-position arrays carry one extra slot at the end (a dummy word with no pieces)
        # because TFLite's SCATTER_ND and RANGE kernels fail on empty tensors.
        old_splits = pieces.row_splits  # [words + 1]
        lengths = tf.where(too_long, tf.ones_like(chars), old_splits[1:] - old_splits[:-1])
        new_splits = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(lengths)], axis=0)
        slots = tf.cast(new_splits[-1], tf.int32) + 1  # output pieces + the dummy slot
        starts = tf.cast(new_splits, tf.int32)  # word starts, then the dummy's start
        marks = tf.scatter_nd(tf.expand_dims(starts, 1), tf.ones_like(starts),
                              tf.reshape(slots, [1]))
        word = tf.cumsum(marks) - 1  # [slots], the dummy slot maps to word index `words`
        slot = tf.cast(tf.cumsum(tf.ones_like(marks)) - 1, tf.int64)
        source = tf.gather(old_splits, word) + (slot - tf.gather(new_splits, word))
        piece_ids = tf.concat([pieces.flat_values, tf.zeros([1], tf.int32)], axis=0)
        replace = tf.gather(tf.concat([too_long, tf.zeros([1], tf.bool)], axis=0), word)
        values = tf.where(replace, tf.fill(tf.shape(replace), tf.constant(self._unk_id, tf.int32)),
                          tf.gather(piece_ids, source))[:-1]
        row_splits = tf.gather(new_splits, words.row_splits)
        return tf.RaggedTensor.from_row_splits(values, row_splits, validate=False)
