"""CoNLL-style column files for token classification (NER): reading, tag schemes, labels, writing.

A column file has one token per line, the token in the first column and its tag in the last
(any number of columns between them, separated by spaces or tabs), a blank (or whitespace-only)
line between sentences, and `-DOCSTART-` lines, which are skipped (they also end a sentence).

Tag schemes (`O` outside an entity, `P-TYPE` inside one):

- IOB1 (the original CoNLL-2003 files): `I-X` inside an entity; `B-X` only starts an entity
  that directly follows another entity of type X.
- IOB2: `B-X` starts every entity, `I-X` continues it.
- IOBES: `S-X` a single-token entity, `B-X` / `I-X` / `E-X` the beginning, inside and end of a
  longer one.

The scheme is detected from a file (`S-`/`E-` tags → IOBES; an `I-X` that starts an entity →
IOB1; else IOB2) unless given, checked token by token, and every sentence is converted to IOB2,
which is what the rest of the package uses (labels, metrics, predictions files).

    >>> to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1")
    ['B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC']
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Sequence

from bert_tf.errors import InputError
from bert_tf.io import atomic_output

IOB1, IOB2, IOBES = "IOB1", "IOB2", "IOBES"
TAG_SCHEMES = (IOB1, IOB2, IOBES)
OUTSIDE = "O"
DOCSTART = "-DOCSTART-"
_PREFIXES = {IOB1: ("B", "I"), IOB2: ("B", "I"), IOBES: ("B", "I", "E", "S")}
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")


class ConllError(InputError):
    """A malformed CoNLL file (names the file and line) or an unknown tag scheme / label."""


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence: its tokens, their tags (IOB2 after `read_conll`), and the 1-based line
    number of every token in its file (for error messages)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    lines: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ConllFile:
    """The sentences of a file with their tags converted to IOB2, and the scheme the file used."""

    path: str
    sentences: tuple[Sentence, ...]
    tag_scheme: str

    @property
    def num_tokens(self) -> int:
        return sum(len(s.words) for s in self.sentences)


def _split_tag(tag: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER", ("O", "") for "O"; ("", tag) when it is neither form."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, entity_type = tag.partition("-")
    if not dash or len(prefix) != 1 or not entity_type:
        return "", tag
    return prefix, entity_type


def read_columns(path: str | os.PathLike, with_tags: bool = True) -> list[Sentence]:
    """The sentences of a column file with its tags as written (no scheme check).

    With `with_tags=False` (a file to predict), only the first column is read and the tags are
    empty strings. Raises ConllError (file and line) for a token line with no tag column when
    `with_tags`.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConllError(f"cannot read CoNLL file {path}: {e}") from None
    sentences, words, tags, lines = [], [], [], []

    def flush():
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags), tuple(lines)))
            for column in (words, tags, lines):
                column.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        columns = _COLUMN_SEPARATOR.split(line.strip(" \t\r\n"))
        if columns == [""]:
            flush()
        elif columns[0] == DOCSTART:
            flush()
        elif not with_tags:
            words.append(columns[0])
            tags.append("")
            lines.append(number)
        elif len(columns) < 2:
            raise ConllError(f"{path}:{number}: the line {line!r} has no tag: expected the token "
                             "in the first column and its tag in the last")
        else:
            words.append(columns[0])
            tags.append(columns[-1])
            lines.append(number)
    flush()
    return sentences


def detect_tag_scheme(sentences: Iterable[Sentence]) -> str:
    """IOBES if any tag is `S-`/`E-`; IOB1 if an `I-X` starts an entity (at a sentence start,
    after `O` or after another type); otherwise IOB2."""
    starts_with_i = False
    for sentence in sentences:
        previous = ""
        for tag in sentence.tags:
            prefix, entity_type = _split_tag(tag)
            if prefix in ("S", "E"):
                return IOBES
            if prefix == "I" and _split_tag(previous)[1] != entity_type:
                starts_with_i = True
            previous = tag
    return IOB1 if starts_with_i else IOB2


def _scheme_error(path: str, line: int, tag: str, scheme: str, why: str) -> ConllError:
    return ConllError(f"{path}:{line}: tag {tag!r} breaks the {scheme} scheme: {why} (pass the "
                      "file's tag scheme explicitly if it was detected wrongly)")


def to_iob2(tags: Sequence[str], scheme: str, path: str = "<tags>",
            lines: Sequence[int] | None = None) -> list[str]:
    """Converts one sentence's tags from `scheme` to IOB2, checking them.

    Args:
        tags: the sentence's tags as written.
        scheme: IOB1, IOB2 or IOBES.
        path, lines: the file and the tags' line numbers, for the error message.

    Returns:
        The IOB2 tags. Raises ConllError at the first tag that is malformed or breaks the scheme
        (IOB2: `I-X` not after `B-X`/`I-X`; IOBES: a `B`/`I` not continued by `I`/`E` of its
        type, an `I`/`E` not after `B`/`I` of its type). IOB1 accepts any order of `B`/`I`.
    """
    if scheme not in TAG_SCHEMES:
        raise ConllError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(TAG_SCHEMES)}")
    lines = list(lines) if lines is not None else list(range(1, len(tags) + 1))
    parsed = [_split_tag(t) for t in tags]
    out = []
    for i, (tag, (prefix, entity_type)) in enumerate(zip(tags, parsed)):
        if prefix == OUTSIDE:
            out.append(OUTSIDE)
            continue
        if prefix not in _PREFIXES[scheme]:
            raise _scheme_error(path, lines[i], tag, scheme, "expected O or one of "
                                + ", ".join(f"{p}-TYPE" for p in _PREFIXES[scheme]))
        before = parsed[i - 1] if i > 0 else (OUTSIDE, "")
        after = parsed[i + 1] if i + 1 < len(parsed) else (OUTSIDE, "")
        continues = before[1] == entity_type and before[0] in ("B", "I")
        if scheme == IOBES:
            if prefix in ("I", "E") and not continues:
                raise _scheme_error(path, lines[i], tag, scheme,
                                    f"it must follow B-{entity_type} or I-{entity_type}")
            if prefix in ("B", "I") and not (after[1] == entity_type and after[0] in ("I", "E")):
                raise _scheme_error(path, lines[i], tag, scheme,
                                    f"it must be followed by I-{entity_type} or E-{entity_type}")
            out.append(f"{'B' if prefix in ('B', 'S') else 'I'}-{entity_type}")
        elif scheme == IOB2:
            if prefix == "I" and not continues:
                raise _scheme_error(path, lines[i], tag, scheme,
                                    f"I-{entity_type} must follow B-{entity_type} or "
                                    f"I-{entity_type}")
            out.append(tag)
        else:  # IOB1: an I continuing the previous entity's type stays inside it
            same = before[0] != OUTSIDE and before[1] == entity_type
            out.append(f"{'I' if prefix == 'I' and same else 'B'}-{entity_type}")
    return out


def read_conll(path: str | os.PathLike, tag_scheme: str | None = None) -> ConllFile:
    """Reads a CoNLL column file and converts its tags to IOB2.

    Args:
        path: the file (UTF-8).
        tag_scheme: IOB1, IOB2 or IOBES; None detects it (see `detect_tag_scheme`).

    Returns:
        A ConllFile; raises ConllError naming the file and line for a line without a tag or a
        tag that breaks the scheme.
    """
    path = os.fspath(path)
    raw = read_columns(path)
    scheme = tag_scheme.upper() if tag_scheme else detect_tag_scheme(raw)
    if scheme not in TAG_SCHEMES:
        raise ConllError(f"unknown tag scheme {tag_scheme!r}: expected one of "
                         f"{', '.join(TAG_SCHEMES)}")
    sentences = tuple(Sentence(s.words, tuple(to_iob2(s.tags, scheme, path, s.lines)), s.lines)
                      for s in raw)
    return ConllFile(path, sentences, scheme)


def read_tokens(path: str | os.PathLike) -> ConllFile:
    """Reads only the tokens of a column file (the first column; a file to predict, with or
    without tags). The sentences' tags are empty strings; `tag_scheme` is ""."""
    path = os.fspath(path)
    return ConllFile(path, tuple(read_columns(path, with_tags=False)), "")


# ----------------------------------------------------------------------------- labels
def entity_types(tags: Iterable[str]) -> list[str]:
    """The sorted entity types of IOB2 tags."""
    return sorted({_split_tag(t)[1] for t in tags if t != OUTSIDE})


def labels_from(conll: ConllFile) -> list[str]:
    """The label list for a training file: `O`, then `B-X`, `I-X` for every type X in it (sorted),
    so an `I-X` that training never saw still has an id."""
    types = entity_types(t for s in conll.sentences for t in s.tags)
    return [OUTSIDE] + [f"{p}-{t}" for t in types for p in "BI"]


def check_labels(labels: Sequence[str], source: str = "labels") -> list[str]:
    """Validates a given label list (IOB2 tags, `O` among them, no duplicates)."""
    labels = [str(x) for x in labels]
    if OUTSIDE not in labels:
        raise ConllError(f"{source}: the labels {labels} lack {OUTSIDE!r}")
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise ConllError(f"{source}: duplicate labels {duplicates}")
    bad = [x for x in labels if x != OUTSIDE and _split_tag(x)[0] not in ("B", "I")]
    if bad:
        raise ConllError(f"{source}: labels must be IOB2 tags (O, B-TYPE, I-TYPE), got {bad}")
    return labels


def check_known_tags(conll: ConllFile, labels: Sequence[str]) -> None:
    """Raises ConllError at the first tag of `conll` (IOB2) that is not in `labels`."""
    known = set(labels)
    for sentence in conll.sentences:
        for tag, line in zip(sentence.tags, sentence.lines):
            if tag not in known:
                raise ConllError(f"{conll.path}:{line}: tag {tag!r} is not one of the model's "
                                 f"labels ({', '.join(labels)})")


def _write_atomically(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, then renames it into place."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    # atomic_output, not tempfile.mkstemp: mkstemp creates 0600 files whatever the umask.
    with atomic_output(path) as f:
        f.write(text)


def write_labels(path: str | os.PathLike, labels: Sequence[str]) -> None:
    """Writes labels.txt: one label per line, in id order."""
    _write_atomically(path, "".join(f"{label}\n" for label in labels))


def read_labels(path: str | os.PathLike) -> list[str]:
    """Reads and validates a labels.txt."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            labels = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise ConllError(f"cannot read labels file {path}: {e}") from None
    return check_labels(labels, path)


# ----------------------------------------------------------------------------- predictions
def write_predictions(path: str | os.PathLike, sentences: Sequence[Sentence],
                      predictions: Sequence[Sequence[str]], with_gold: bool = True) -> None:
    """Writes predictions in the CoNLL format conlleval reads: `token gold predicted` per line
    (`token predicted` with `with_gold=False`), a blank line after each sentence; tags IOB2.

    Raises ValueError (a bug) if a sentence and its prediction differ in length.
    """
    out = []
    for sentence, predicted in zip(sentences, predictions, strict=True):
        if len(predicted) != len(sentence.words):
            raise ValueError(f"{len(predicted)} predicted tags for a sentence of "
                             f"{len(sentence.words)} tokens (line {sentence.lines[0]})")
        for word, gold, tag in zip(sentence.words, sentence.tags, predicted):
            out.append(f"{word} {gold} {tag}\n" if with_gold else f"{word} {tag}\n")
        out.append("\n")
    _write_atomically(path, "".join(out))
