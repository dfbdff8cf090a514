"""Pure-Python reference implementation of BERT's original tokenization rules.

This reproduces the behaviour of Google's ``tokenization.FullTokenizer`` (basic tokenization
followed by greedy WordPiece) and serves as the exact reference the in-graph tokenizers are
measured against. It is slow; use it for tests, parity checks and small jobs.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Container, Iterable

from bert_tf.text.vocab import UNK_TOKEN, Vocab, load_vocab

__all__ = [
    "FullTokenizer",
    "basic_tokenize",
    "wordpiece_tokenize",
    "to_unicode",
    "MAX_INPUT_CHARS_PER_WORD",
]

MAX_INPUT_CHARS_PER_WORD = 200

# CJK Unified Ideographs (+ extensions A-E) and the compatibility ideographs. Hangul, Hiragana
# and Katakana are deliberately absent: they are written with spaces and handled like Latin.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def to_unicode(text: str | bytes) -> str:
    """Returns ``text`` as ``str``; bytes are decoded as UTF-8, silently dropping invalid bytes."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "ignore")
    raise TypeError(f"expected str or bytes, got {type(text).__name__}")


def _is_whitespace(ch: str) -> bool:
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in ("\t", "\n", "\r"):
        return False  # these are whitespace, not controls
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # Every non-alphanumeric printable ASCII char counts, including symbols like $ ^ ` + < = > |.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if _is_whitespace(ch) else ch)
    return "".join(out)


def _space_cjk(text: str) -> str:
    out = []
    for ch in text:
        if _is_cjk(ord(ch)):
            out.extend((" ", ch, " "))
        else:
            out.append(ch)
    return "".join(out)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def _split_punctuation(token: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for ch in token:
        if _is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text: str | bytes, do_lower_case: bool = True) -> list[str]:
    """Splits ``text`` into words and punctuation (Google's ``BasicTokenizer`` rules).

    Steps: decode bytes (UTF-8, invalid bytes dropped); delete NUL, U+FFFD and category C*
    characters other than tab/newline/CR; map whitespace (space, \\t, \\n, \\r, Zs) to spaces;
    surround CJK ideographs with spaces; split on whitespace; if ``do_lower_case`` lower-case,
    NFD-decompose and drop Mn marks; make each punctuation character its own token.
    """
    text = _space_cjk(_clean(to_unicode(text)))
    pieces: list[str] = []
    for word in text.split():
        if do_lower_case:
            word = _strip_accents(word.lower())
        pieces.extend(_split_punctuation(word))
    # Re-split: accent stripping can empty or otherwise alter tokens.
    return " ".join(pieces).split()


def wordpiece_tokenize(
    token: str | bytes,
    vocab: Vocab | Container[str],
    unk_token: str = UNK_TOKEN,
    max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD,
) -> list[str]:
    """Greedy longest-match-first WordPiece segmentation (Google's ``WordpieceTokenizer``).

    ``token`` is normally one word from :func:`basic_tokenize`; like Google's version it is
    whitespace-split first, and each word is segmented independently. Continuation pieces are
    prefixed with ``##``. A word that has a position no vocab piece matches, or that is longer
    than ``max_input_chars_per_word`` characters, becomes a single ``unk_token``.
    """
    output: list[str] = []
    for word in to_unicode(token).split():
        n = len(word)
        if n > max_input_chars_per_word:
            output.append(unk_token)
            continue
        pieces: list[str] = []
        start = 0
        while start < n:
            end = n
            match = None
            while start < end:
                candidate = word[start:end]
                if start > 0:
                    candidate = "##" + candidate
                if candidate in vocab:
                    match = candidate
                    break
                end -= 1
            if match is None:
                pieces = [unk_token]
                break
            pieces.append(match)
            start = end
        output.extend(pieces)
    return output


class FullTokenizer:
    """Basic tokenization followed by WordPiece, as Google's ``tokenization.FullTokenizer``.

    Args:
      vocab: a :class:`Vocab` or the path of a ``vocab.txt`` (loaded without requiring special
        tokens, as Google's loader does).
      do_lower_case: lower-case and strip accents (uncased models) or not (cased models).
    """

    def __init__(
        self,
        vocab: Vocab | str | os.PathLike[str],
        do_lower_case: bool = True,
        unk_token: str = UNK_TOKEN,
        max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD,
    ) -> None:
        self.vocab: Vocab = vocab if isinstance(vocab, Vocab) else load_vocab(vocab, required_special_tokens=())
        self.do_lower_case = bool(do_lower_case)
        self.unk_token = unk_token
        self.max_input_chars_per_word = int(max_input_chars_per_word)

    def tokenize(self, text: str | bytes) -> list[str]:
        """Returns the WordPiece tokens of ``text``."""
        tokens: list[str] = []
        for word in basic_tokenize(text, self.do_lower_case):
            tokens.extend(
                wordpiece_tokenize(word, self.vocab, self.unk_token, self.max_input_chars_per_word)
            )
        return tokens

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Maps tokens to ids; raises ``KeyError`` for a token not in the vocab (as Google's)."""
        return [self.vocab.id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Maps ids to tokens; raises ``IndexError`` for an out-of-range id."""
        return [self.vocab.token(i) for i in ids]
