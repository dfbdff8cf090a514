"""WordPiece vocabulary loading and case-consistency checks.

A vocabulary file follows the format of Google's BERT ``vocab.txt``: one token per line, the
token id is the (0-based) line index, and each line is stripped of surrounding whitespace.
"""

from __future__ import annotations

import logging
import os
import re
from bert_tf.errors import InputError
from collections.abc import Iterable, Iterator, Sequence

logger = logging.getLogger("bert_tf")

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)

__all__ = [
    "VocabError",
    "Vocab",
    "load_vocab",
    "looks_cased",
    "check_do_lower_case",
    "DEFAULT_SPECIAL_TOKENS",
]


class VocabError(InputError):
    """Raised when a vocabulary file is missing, unreadable or malformed."""


class Vocab:
    """An ordered WordPiece vocabulary.

    Attributes:
      tokens: the tokens in id order (``tokens[i]`` is the token with id ``i``).
      token_to_id: token -> id. If a token occurs more than once, the *last* occurrence wins,
        exactly like Google's ``load_vocab`` (which assigns into a dict line by line); every
        line still keeps its own id in ``tokens``.
      path: the file the vocabulary was read from, or ``None``.
    """

    def __init__(self, tokens: Iterable[str], path: str | None = None) -> None:
        self.tokens: list[str] = list(tokens)
        self.token_to_id: dict[str, int] = {}
        for index, token in enumerate(self.tokens):
            self.token_to_id[token] = index  # last occurrence wins (Google semantics)
        self._path = None if path is None else os.fspath(path)

    @property
    def path(self) -> str | None:
        """Path of the source file, if any."""
        return self._path

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.token_to_id

    def __iter__(self) -> Iterator[str]:
        return iter(self.tokens)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self.tokens)}, path={self._path!r})"

    def id(self, token: str) -> int:
        """Returns the id of ``token``; raises ``KeyError`` if it is not in the vocabulary."""
        try:
            return self.token_to_id[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary ({self._where()})") from None

    def token(self, id: int) -> str:  # noqa: A002 - mirrors the public API name
        """Returns the token with id ``id``; raises ``IndexError`` if out of range."""
        index = int(id)
        if not 0 <= index < len(self.tokens):
            raise IndexError(f"token id {index} out of range [0, {len(self.tokens)}) ({self._where()})")
        return self.tokens[index]

    def _special_id(self, name: str) -> int:
        try:
            return self.token_to_id[name]
        except KeyError:
            raise VocabError(f"special token {name!r} is not in the vocabulary ({self._where()})") from None

    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]``."""
        return self._special_id(CLS_TOKEN)

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]``."""
        return self._special_id(SEP_TOKEN)

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]``."""
        return self._special_id(PAD_TOKEN)

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]``."""
        return self._special_id(UNK_TOKEN)

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]``."""
        return self._special_id(MASK_TOKEN)

    def _where(self) -> str:
        return f"vocab file '{self._path}'" if self._path else "in-memory vocab"

    def check_unique(self) -> None:
        """Raises VocabError naming the first token that occurs on more than one line (1-based
        line numbers). Google's loader lets the last line win, so ids that point at the earlier
        lines are never produced while the embedding table still has rows for them: tools
        that write ids a model trains on (pretraining data) refuse such a file."""
        if len(self.token_to_id) == len(self.tokens):
            return
        lines: dict[str, list[int]] = {}
        for index, token in enumerate(self.tokens):
            lines.setdefault(token, []).append(index + 1)
        repeated = {t: n for t, n in lines.items() if len(n) > 1}
        token, at = next(iter(repeated.items()))
        more = f" ({len(repeated) - 1} more repeated token(s))" if len(repeated) > 1 else ""
        raise VocabError(f"{self._where()} has duplicate tokens: {token!r} on lines "
                         f"{', '.join(map(str, at))}{more}; every token must be on one line")


def load_vocab(
    path: str | os.PathLike[str],
    required_special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
) -> Vocab:
    """Loads a BERT ``vocab.txt``.

    One token per line, id = line index, each line stripped of surrounding whitespace (a blank
    line is therefore the token ``""`` and still consumes an id). Lines are separated by ``\\n``
    only; a trailing ``\\r`` is removed by the strip. Duplicate tokens keep their own line in
    ``Vocab.tokens`` but, as in Google's loader, the last occurrence wins in ``token_to_id``.

    Raises:
      VocabError: the file does not exist or cannot be read, contains no tokens, is not valid
        UTF-8 (the message gives the line and byte offset), or lacks any of
        ``required_special_tokens`` (all missing ones are listed).
    """
    path_str = os.fspath(path)
    if not os.path.exists(path_str):
        raise VocabError(f"vocab file '{path_str}' not found")
    if os.path.isdir(path_str):
        raise VocabError(f"vocab file '{path_str}' is a directory, expected a vocab.txt file")
    try:
        with open(path_str, "rb") as f:
            data = f.read()
    except OSError as e:
        raise VocabError(f"cannot read vocab file '{path_str}': {e}") from e

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise VocabError(
            f"vocab file '{path_str}' is not valid UTF-8: line {line}, byte offset {e.start} "
            f"({e.reason}, byte 0x{data[e.start]:02x})"
        ) from None

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline terminates the last line; it does not start a new one
    tokens = [line.strip() for line in lines]
    if not any(tokens):
        raise VocabError(f"vocab file '{path_str}' is empty (no tokens)")

    vocab = Vocab(tokens, path=path_str)
    missing = [t for t in required_special_tokens if t not in vocab]
    if missing:
        raise VocabError(
            f"vocab file '{path_str}' is missing required special token(s): {', '.join(missing)}"
        )
    return vocab


def _is_special(token: str) -> bool:
    return len(token) >= 2 and token.startswith("[") and token.endswith("]")


def _case_counts(vocab: Vocab) -> tuple[int, int]:
    """Returns (#alphabetic word tokens with cased letters, #of those with an uppercase letter)."""
    cased = upper = 0
    for token in vocab.tokens:
        if not token or _is_special(token) or token.startswith("##") or not token.isalpha():
            continue
        if not any(c.lower() != c.upper() for c in token):
            continue  # e.g. CJK: no case distinction, tells nothing about casing
        cased += 1
        if any(c.isupper() for c in token):
            upper += 1
    return cased, upper


def looks_cased(vocab: Vocab, min_fraction: float = 0.05) -> bool:
    """Heuristic: does ``vocab`` look like a cased vocabulary?

    Considers the alphabetic, non-special (``[...]``), non-continuation (``##``) tokens that
    contain letters with a case distinction. The vocab is "cased" if at least one of them and
    at least ``min_fraction`` (5%) of them contain an uppercase letter. Google's uncased English
    vocab has 1 such token out of ~22k; the cased one has thousands.
    """
    cased, upper = _case_counts(vocab)
    return upper >= 1 and upper >= min_fraction * cased


# Google model directory names whose casing is known (cf. Google's validate_case_matches_checkpoint,
# extended with the whole-word-masking releases and the small BERTs).
_UNCASED_MODELS = frozenset(
    {
        "uncased_L-24_H-1024_A-16",
        "uncased_L-12_H-768_A-12",
        "multilingual_L-12_H-768_A-12",
        "multilined_L-12_H-768_A-12",
        "chinese_L-12_H-768_A-12",
        "wwm_uncased_L-24_H-1024_A-16",
    }
)
_CASED_MODELS = frozenset(
    {
        "cased_L-12_H-768_A-12",
        "cased_L-24_H-1024_A-16",
        "multi_cased_L-12_H-768_A-12",
        "wwm_cased_L-24_H-1024_A-16",
    }
)
_SMALL_BERT_RE = re.compile(r"uncased_L-(?:2|4|6|8|10|12)_H-(?:128|256|512|768)_A-\d+")


def _checkpoint_model_casing(init_checkpoint: str) -> tuple[str, bool] | None:
    """Returns (model name, is_cased) if a path component is a known Google model directory."""
    parts = [p for p in re.split(r"[/\\]+", init_checkpoint) if p]
    for part in reversed(parts):
        if part in _UNCASED_MODELS or _SMALL_BERT_RE.fullmatch(part):
            return part, False
        if part in _CASED_MODELS:
            return part, True
    return None


def check_do_lower_case(
    vocab: Vocab | str | os.PathLike[str],
    do_lower_case: bool,
    *,
    init_checkpoint: str | None = None,
) -> str | None:
    """Warns when ``do_lower_case`` likely mismatches the vocabulary or checkpoint.

    Checks (a) the vocab casing via :func:`looks_cased` (a vocab without any cased-script
    tokens is not judged) and (b), like Google's ``validate_case_matches_checkpoint``, whether
    a path component of ``init_checkpoint`` is a known Google model directory (e.g.
    ``uncased_L-12_H-768_A-12``) whose casing disagrees with the flag.

    Returns:
      The warning message (also logged on the ``bert_tf`` logger), or ``None`` if consistent.
    """
    if not isinstance(vocab, Vocab):
        vocab = load_vocab(vocab, required_special_tokens=())
    problems: list[str] = []
    where = f"vocab file '{vocab.path}'" if vocab.path else "the in-memory vocab"

    cased_count, upper_count = _case_counts(vocab)
    if cased_count > 0:
        cased = looks_cased(vocab)
        if cased and do_lower_case:
            problems.append(
                f"{where} looks cased ({upper_count} of {cased_count} word tokens contain "
                f"uppercase letters) but do_lower_case=True; uppercase word pieces will never "
                f"match. Use do_lower_case=False for cased models."
            )
        elif not cased and not do_lower_case:
            problems.append(
                f"{where} looks uncased ({upper_count} of {cased_count} word tokens contain "
                f"uppercase letters) but do_lower_case=False; capitalised words will map to "
                f"[UNK] or odd pieces. Use do_lower_case=True for uncased models."
            )

    if init_checkpoint:
        found = _checkpoint_model_casing(os.fspath(init_checkpoint))
        if found is not None:
            model, model_cased = found
            if model_cased == do_lower_case:
                kind = "cased" if model_cased else "uncased"
                problems.append(
                    f"init_checkpoint '{init_checkpoint}' is the {kind} Google model {model!r} "
                    f"but do_lower_case={do_lower_case}; set do_lower_case={not model_cased} "
                    f"to match the checkpoint."
                )

    if not problems:
        return None
    message = "Possible do_lower_case mismatch: " + " ".join(problems)
    logger.warning("%s", message)
    return message
