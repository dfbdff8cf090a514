"""GLUE / XNLI data processors and a generic processor for a user's own TSV/CSV file.

The processors follow the file layouts that Google's ``run_classifier.py`` reads (and the GLUE
download script writes), with the same GUIDs, text columns and label sets:

=========  ==================================================  =====================================
task       files (in ``data_dir``)                             labels
=========  ==================================================  =====================================
cola       train.tsv, dev.tsv (no header, 4 cols); test.tsv     "0", "1"
           (header ``index sentence``)
sst-2      train.tsv, dev.tsv (``sentence label``); test.tsv    "0", "1"
           (``index sentence``)
mrpc       train.tsv, dev.tsv, test.tsv (header, 5 cols)       "0", "1"
sts-b      train.tsv, dev.tsv (10 cols), test.tsv (9 cols)     regression (float score)
qqp        train.tsv, dev.tsv (6 cols), test.tsv (3 cols)      "0", "1"
mnli       train.tsv, dev_matched.tsv, test_matched.tsv        contradiction, entailment, neutral
mnli-mm    train.tsv, dev_mismatched.tsv, test_mismatched.tsv  (same)
qnli       train.tsv, dev.tsv (4 cols), test.tsv (3 cols)      entailment, not_entailment
rte        train.tsv, dev.tsv (4 cols), test.tsv (3 cols)      entailment, not_entailment
wnli       train.tsv, dev.tsv (4 cols), test.tsv (3 cols)      "0", "1"
xnli       multinli/multinli.train.<lang>.tsv, xnli.dev.tsv,   contradiction, entailment, neutral
           xnli.test.tsv (rows filtered by language)
=========  ==================================================  =====================================

Files are read exactly like Google's ``_read_tsv``: ``csv.reader(f, delimiter="\\t",
quotechar=None)`` so quotes stay literal, UTF-8, plus a leading UTF-8 BOM is stripped (MRPC's
train/dev files start with one). Test examples get a placeholder label as in Google's code: the
first label of ``get_labels()`` (e.g. ``"0"`` or ``"contradiction"``), or ``0.0`` for regression.

Errors are ``ValueError``s that name the file (and the 1-based line number for a bad row): a
missing data file, a row with the wrong number of columns, a label outside the label set, an
unparsable regression score.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from bert_tf.errors import InputError

__all__ = ["InputExample", "DataProcessor", "ColaProcessor", "Sst2Processor", "MrpcProcessor",
           "StsbProcessor", "QqpProcessor", "MnliProcessor", "MnliMismatchedProcessor",
           "QnliProcessor", "RteProcessor", "WnliProcessor", "XnliProcessor", "TsvProcessor",
           "CsvProcessor", "PROCESSORS", "get_processor", "read_tsv"]

Label = Union[str, float, Tuple[str, ...]]  # tuple: a multi-label example's labels


@dataclass
class InputExample:
    """One example: ``text_b`` is None for single-sentence tasks; ``label`` is a string for
    classification, a float for regression."""
    guid: str
    text_a: str
    text_b: Optional[str] = None
    label: Optional[Label] = None


Row = Tuple[int, List[str]]  # (1-based line number, columns)


def _open_text(path: str):
    if not os.path.isfile(path):
        raise InputError(f"data file not found: {path}")
    # utf-8-sig strips a leading BOM (and only a leading one).
    return open(path, "r", encoding="utf-8-sig", newline="")


def read_tsv(path: str, delimiter: str = "\t", quotechar: Optional[str] = None) -> List[Row]:
    """Read a delimited file like Google's ``_read_tsv``; returns ``(line_number, row)`` pairs.

    ``line_number`` is 1-based and counts physical lines (with ``quotechar=None`` a row is always
    exactly one line). A missing file raises ``ValueError`` naming the path.
    """
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter, quotechar=quotechar)
        rows: List[Row] = []
        start = 1
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
        return rows


def _row_error(path: str, line: int, msg: str) -> InputError:
    # Bad data in the user's file: InputError (a ValueError), one line from the command line.
    return InputError(f"{path}, line {line}: {msg}")


class DataProcessor:
    """Base class: reads train/dev/test examples of one task from a data directory."""

    #: True for a regression task (float labels, ``get_labels()`` returns ``[]``).
    is_regression: bool = False

    def get_train_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError

    def get_dev_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError

    def get_test_examples(self, data_dir: str) -> List[InputExample]:
        raise NotImplementedError

    def get_labels(self) -> List[str]:
        raise NotImplementedError

    @property
    def placeholder_label(self) -> Label:
        """The label test examples carry (Google's convention)."""
        return 0.0 if self.is_regression else self.get_labels()[0]

    # -- helpers for subclasses ------------------------------------------------------------
    def _check_label(self, label: str, path: str, line: int) -> Label:
        if self.is_regression:
            try:
                return float(label)
            except ValueError:
                raise _row_error(path, line, f"label {label!r} is not a number") from None
        labels = self.get_labels()
        if label not in labels:
            raise _row_error(path, line, f"label {label!r} is not one of {labels}")
        return label


@dataclass(frozen=True)
class _Layout:
    """Where things are in one GLUE file.

    ``guid``: "index" → ``"<set>-<i>"`` with ``i`` the row's position in the file (header = 0,
    as Google's enumerate); "column0" → ``"<set>-<row[0]>"``. ``label`` None → placeholder.
    ``exact`` False → ``columns`` is a minimum (MNLI/XNLI files carry extra annotator columns).
    """
    filename: str
    columns: int
    text_a: int
    text_b: Optional[int]
    label: Optional[int]
    header: bool = True
    guid: str = "column0"
    exact: bool = True


class _GlueProcessor(DataProcessor):
    """A GLUE task described by one ``_Layout`` per split.

    ``labels`` are the values in the files, in id order; ``label_names`` (where the task defines
    names for them, as the GLUE paper and TFDS do) replace them in the examples, and so in
    labels.txt, predictions and exported models: a served SST-2 model answers "positive", not "1".
    """
    labels: List[str] = ["0", "1"]
    label_names: Optional[List[str]] = None
    train: _Layout
    dev: _Layout
    test: _Layout

    def get_labels(self) -> List[str]:
        return list(self.label_names or self.labels)

    def _check_label(self, label: str, path: str, line: int) -> Label:
        if self.is_regression or not self.label_names:
            return super()._check_label(label, path, line)
        if label not in self.labels:
            raise _row_error(path, line, f"label {label!r} is not one of {self.labels}")
        return self.label_names[self.labels.index(label)]

    def get_train_examples(self, data_dir):
        return self._read(data_dir, self.train, "train")

    def get_dev_examples(self, data_dir):
        return self._read(data_dir, self.dev, "dev")

    def get_test_examples(self, data_dir):
        return self._read(data_dir, self.test, "test")

    def _read(self, data_dir: str, layout: _Layout, set_type: str) -> List[InputExample]:
        path = os.path.join(data_dir, layout.filename)
        rows = read_tsv(path)
        examples = []
        for i, (line, row) in enumerate(rows):
            if layout.header and i == 0:
                continue
            n = len(row)
            if (n != layout.columns) if layout.exact else (n < layout.columns):
                want = f"{layout.columns}" if layout.exact else f"at least {layout.columns}"
                raise _row_error(path, line, f"expected {want} tab-separated columns, got {n}")
            guid = f"{set_type}-{i if layout.guid == 'index' else row[0]}"
            text_b = None if layout.text_b is None else row[layout.text_b]
            label = (self.placeholder_label if layout.label is None
                     else self._check_label(row[layout.label], path, line))
            examples.append(InputExample(guid, row[layout.text_a], text_b, label))
        return examples


class ColaProcessor(_GlueProcessor):
    """CoLA: train/dev have no header (source, label, original-label, sentence)."""
    label_names = ["unacceptable", "acceptable"]
    train = _Layout("train.tsv", 4, 3, None, 1, header=False, guid="index")
    dev = _Layout("dev.tsv", 4, 3, None, 1, header=False, guid="index")
    test = _Layout("test.tsv", 2, 1, None, None, guid="index")


class Sst2Processor(_GlueProcessor):
    label_names = ["negative", "positive"]
    train = _Layout("train.tsv", 2, 0, None, 1, guid="index")
    dev = _Layout("dev.tsv", 2, 0, None, 1, guid="index")
    test = _Layout("test.tsv", 2, 1, None, None, guid="index")


class MrpcProcessor(_GlueProcessor):
    """MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (test: index instead of Quality)."""
    label_names = ["not_equivalent", "equivalent"]
    train = _Layout("train.tsv", 5, 3, 4, 0, guid="index")
    dev = _Layout("dev.tsv", 5, 3, 4, 0, guid="index")
    test = _Layout("test.tsv", 5, 3, 4, None, guid="index")


class StsbProcessor(_GlueProcessor):
    """STS-B: regression on the float score in the last column."""
    is_regression = True
    labels: List[str] = []
    train = _Layout("train.tsv", 10, 7, 8, 9)
    dev = _Layout("dev.tsv", 10, 7, 8, 9)
    test = _Layout("test.tsv", 9, 7, 8, None)


class QqpProcessor(_GlueProcessor):
    """QQP: id, qid1, qid2, question1, question2, is_duplicate (test: id, question1, question2)."""
    label_names = ["not_duplicate", "duplicate"]
    train = _Layout("train.tsv", 6, 3, 4, 5)
    dev = _Layout("dev.tsv", 6, 3, 4, 5)
    test = _Layout("test.tsv", 3, 1, 2, None)


class MnliProcessor(_GlueProcessor):
    """MNLI: sentence1/sentence2 in columns 8/9, gold label last. ``matched=False`` reads the
    mismatched dev/test files."""
    labels = ["contradiction", "entailment", "neutral"]
    train = _Layout("train.tsv", 10, 8, 9, -1, exact=False)

    def __init__(self, matched: bool = True):
        self.matched = matched
        kind = "matched" if matched else "mismatched"
        self.dev = _Layout(f"dev_{kind}.tsv", 10, 8, 9, -1, exact=False)
        self.test = _Layout(f"test_{kind}.tsv", 10, 8, 9, None, exact=False)


class MnliMismatchedProcessor(MnliProcessor):
    def __init__(self):
        super().__init__(matched=False)


class QnliProcessor(_GlueProcessor):
    labels = ["entailment", "not_entailment"]
    train = _Layout("train.tsv", 4, 1, 2, 3)
    dev = _Layout("dev.tsv", 4, 1, 2, 3)
    test = _Layout("test.tsv", 3, 1, 2, None)


class RteProcessor(QnliProcessor):
    pass


class WnliProcessor(_GlueProcessor):
    label_names = ["not_entailment", "entailment"]
    train = _Layout("train.tsv", 4, 1, 2, 3)
    dev = _Layout("dev.tsv", 4, 1, 2, 3)
    test = _Layout("test.tsv", 3, 1, 2, None)


class XnliProcessor(DataProcessor):
    """XNLI as in Google's script.

    * train: ``multinli/multinli.train.<language>.tsv`` (header; premise, hypo, label); the
      label ``contradictory`` is mapped to ``contradiction``; guid ``train-<i>``.
    * dev: ``xnli.dev.tsv`` (header; language, gold_label, ..., sentence1 at column 6,
      sentence2 at column 7, ...), rows of other languages skipped; guid ``dev-<i>`` with ``i``
      the row's position in the whole file.
    * test: ``xnli.test.tsv``, same layout, placeholder label (Google's script has no test set).
    """
    labels = ["contradiction", "entailment", "neutral"]

    def __init__(self, language: str = "zh"):
        self.language = language

    def get_labels(self):
        return list(self.labels)

    def get_train_examples(self, data_dir):
        path = os.path.join(data_dir, "multinli", f"multinli.train.{self.language}.tsv")
        examples = []
        for i, (line, row) in enumerate(read_tsv(path)):
            if i == 0:
                continue
            if len(row) != 3:
                raise _row_error(path, line, f"expected 3 tab-separated columns, got {len(row)}")
            label = "contradiction" if row[2] == "contradictory" else row[2]
            label = self._check_label(label, path, line)
            examples.append(InputExample(f"train-{i}", row[0], row[1], label))
        return examples

    def _read_xnli(self, path, set_type, with_label):
        examples = []
        for i, (line, row) in enumerate(read_tsv(path)):
            if i == 0:
                continue
            if len(row) < 8:
                raise _row_error(path, line,
                                 f"expected at least 8 tab-separated columns, got {len(row)}")
            if row[0] != self.language:
                continue
            label = (self._check_label(row[1], path, line) if with_label
                     else self.placeholder_label)
            examples.append(InputExample(f"{set_type}-{i}", row[6], row[7], label))
        return examples

    def get_dev_examples(self, data_dir):
        return self._read_xnli(os.path.join(data_dir, "xnli.dev.tsv"), "dev", True)

    def get_test_examples(self, data_dir):
        return self._read_xnli(os.path.join(data_dir, "xnli.test.tsv"), "test", False)


Column = Union[int, str]


class TsvProcessor(DataProcessor):
    """A user's own delimited files: ``train.tsv``/``dev.tsv``/``test.tsv`` in ``data_dir``
    (names configurable).

    Args:
      text_column: column of text_a — an int index, or a header name when ``header=True``.
      label_column: column of the label (same forms).
      text_pair_column: optional column of text_b.
      header: whether each file's first row is a header (skipped; used to resolve names).
      delimiter / quotechar: passed to ``csv.reader``; ``quotechar=None`` keeps quotes literal.
      labels: the label set in id order. When None the labels are learned from the training
        file by ``get_train_examples`` in **first-seen order** (``label_order="first_seen"``,
        the default) or ``sorted`` order (``label_order="sorted"``); ``get_labels()`` before
        that raises ``ValueError``. Dev labels outside the set are an error.
      regression: float labels; ``get_labels()`` returns ``[]``.
      label_separator: multi-label files: the label column holds the example's labels joined
        by this separator (possibly none: an empty column); labels are learned from the parts
        and an example's label is the tuple of its labels (test examples: ``()``).
    Every row of a file must have as many columns as its first row (header or first example).
    Test examples always carry the placeholder label (the first label; 0.0 for regression;
    None while the labels are still unknown) — test files may omit the label column.
    GUIDs are ``"<set>-<i>"`` with ``i`` the 0-based example index.
    """

    def __init__(self, text_column: Column, label_column: Column,
                 text_pair_column: Optional[Column] = None, header: bool = False,
                 delimiter: str = "\t", quotechar: Optional[str] = None,
                 labels: Optional[Sequence[str]] = None, label_order: str = "first_seen",
                 regression: bool = False, train_file: str = "train.tsv",
                 dev_file: str = "dev.tsv", test_file: str = "test.tsv",
                 label_separator: Optional[str] = None):
        if label_order not in ("first_seen", "sorted"):
            raise InputError(f"label_order must be 'first_seen' or 'sorted', got {label_order!r}")
        for c in (text_column, label_column, text_pair_column):
            if isinstance(c, str) and not header:
                raise InputError(f"column name {c!r} needs header=True")
        self.text_column, self.label_column = text_column, label_column
        self.text_pair_column = text_pair_column
        self.header, self.delimiter, self.quotechar = header, delimiter, quotechar
        self.label_order = label_order
        self.is_regression = regression
        self._labels = None if labels is None else [str(x) for x in labels]
        if self._labels is not None and len(set(self._labels)) != len(self._labels):
            raise InputError(f"duplicate labels in {self._labels}")
        self.train_file, self.dev_file, self.test_file = train_file, dev_file, test_file
        if label_separator is not None and (regression or not label_separator):
            raise ValueError("label_separator needs a non-empty separator and a classification "
                             "(not regression) task")
        self.label_separator = label_separator

    @property
    def placeholder_label(self) -> Label:
        return () if self.label_separator is not None else super().placeholder_label

    def _label_parts(self, value: str) -> List[str]:
        if self.label_separator is None:
            return [value]
        return [p.strip() for p in value.split(self.label_separator) if p.strip()]

    def _check_labels(self, value: str, path: str, line: int) -> Label:
        if self.label_separator is None:
            return self._check_label(value, path, line)
        labels = self.get_labels()
        parts = self._label_parts(value)
        for part in parts:
            if part not in labels:
                raise _row_error(path, line, f"label {part!r} (in the label column {value!r}, "
                                             f"separator {self.label_separator!r}) is not one "
                                             f"of {labels}")
        return tuple(dict.fromkeys(parts))

    def get_labels(self):
        if self.is_regression:
            return []
        if self._labels is None:
            raise InputError("labels are not known yet: pass labels=... or call "
                             "get_train_examples first to learn them from the training file")
        return list(self._labels)

    def get_train_examples(self, data_dir):
        return self._read(os.path.join(data_dir, self.train_file), "train")

    def get_dev_examples(self, data_dir):
        return self._read(os.path.join(data_dir, self.dev_file), "dev")

    def get_test_examples(self, data_dir):
        return self._read(os.path.join(data_dir, self.test_file), "test")

    def _resolve(self, col: Optional[Column], names: Optional[List[str]], path: str,
                 required: bool) -> Optional[int]:
        if col is None:
            return None
        if isinstance(col, str):
            assert names is not None
            if col not in names:
                if not required:
                    return None
                raise InputError(f"{path}: column {col!r} not in header {names}")
            return names.index(col)
        return col

    def _read(self, path: str, set_type: str) -> List[InputExample]:
        rows = read_tsv(path, self.delimiter, self.quotechar)
        if not rows:
            return []
        ncols = len(rows[0][1])
        names = rows[0][1] if self.header else None
        body = rows[1:] if self.header else rows
        is_test = set_type == "test"
        a = self._resolve(self.text_column, names, path, True)
        b = self._resolve(self.text_pair_column, names, path, True)
        lab = self._resolve(self.label_column, names, path, not is_test)
        for idx, what in ((a, "text"), (b, "text pair"), (None if is_test else lab, "label")):
            if idx is not None and not -ncols <= idx < ncols:
                raise InputError(f"{path}: {what} column {idx} out of range for {ncols} columns")
        if not self.header and not is_test:
            self._refuse_header_row(path, raw_rows=body, label_column=lab)
        learn = (set_type == "train" and self._labels is None and not self.is_regression)
        seen: List[str] = []
        raw = []
        for line, row in body:
            if len(row) != ncols:
                raise _row_error(path, line, f"expected {ncols} columns, got {len(row)}")
            raw.append((line, row))
            for part in self._label_parts(row[lab]) if learn else ():
                if part not in seen:
                    seen.append(part)
        if learn:
            self._labels = sorted(seen) if self.label_order == "sorted" else seen
        examples = []
        for i, (line, row) in enumerate(raw):
            if is_test:
                label = self.placeholder_label if (self.is_regression or self._labels) else None
            else:
                label = self._check_labels(row[lab], path, line)
            examples.append(InputExample(f"{set_type}-{i}", row[a],
                                         None if b is None else row[b], label))
        return examples


    def _refuse_header_row(self, path: str, raw_rows, label_column: int) -> None:
        """A first row read as data although it is a header would become an example (and, for
        learned labels, a label named like the column): refuse it with a hint."""
        if len(raw_rows) < 2 or len(raw_rows[0][1]) <= label_column:
            return
        first = raw_rows[0][1][label_column].strip()
        rest = [row[label_column].strip() for _, row in raw_rows[1:]
                if len(row) > label_column]
        if self.is_regression:
            suspicious = not _is_number(first) and all(_is_number(v) for v in rest)
        else:
            known = self._labels is not None and first in self._labels
            suspicious = not known and first not in rest and (
                first.lower() in _HEADER_WORDS
                or (not _is_number(first) and all(_is_number(v) for v in rest)))
        if suspicious:
            raise InputError(f"{path}: the first row looks like a header (its label column holds "
                             f"{first!r}, unlike every other row); pass --header (header=True) "
                             f"to skip it")


# Label-column names that mark a header row read as data.
_HEADER_WORDS = {"label", "labels", "class", "category", "target", "y", "score", "gold_label",
                 "sentiment", "rating", "quality"}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class CsvProcessor(TsvProcessor):
    """``TsvProcessor`` with CSV defaults: comma delimiter, ``"`` quoting, ``*.csv`` files."""

    def __init__(self, text_column: Column, label_column: Column, **kwargs):
        kwargs.setdefault("delimiter", ",")
        kwargs.setdefault("quotechar", '"')
        kwargs.setdefault("train_file", "train.csv")
        kwargs.setdefault("dev_file", "dev.csv")
        kwargs.setdefault("test_file", "test.csv")
        super().__init__(text_column, label_column, **kwargs)


PROCESSORS: Dict[str, Callable[..., DataProcessor]] = {
    "cola": ColaProcessor,
    "sst-2": Sst2Processor,
    "mrpc": MrpcProcessor,
    "sts-b": StsbProcessor,
    "qqp": QqpProcessor,
    "mnli": MnliProcessor,
    "mnli-mm": MnliMismatchedProcessor,
    "qnli": QnliProcessor,
    "rte": RteProcessor,
    "wnli": WnliProcessor,
    "xnli": XnliProcessor,
    "tsv": TsvProcessor,
    "csv": CsvProcessor,
}

_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "mnli_mm": "mnli-mm",
            "mnli-mismatched": "mnli-mm", "mnli_mismatched": "mnli-mm"}


def normalize_task_name(task_name: str) -> str:
    """Lower-case and map aliases (``sst2`` → ``sst-2``, ``stsb`` → ``sts-b``, ...)."""
    name = task_name.strip().lower()
    return _ALIASES.get(name, name)


def get_processor(task_name: str, **kwargs) -> DataProcessor:
    """The processor for ``task_name`` (case-insensitive), built with ``kwargs`` (e.g.
    ``matched=False`` for mnli, ``language="de"`` for xnli, columns for tsv/csv)."""
    name = normalize_task_name(task_name)
    if name not in PROCESSORS:
        raise InputError(f"unknown task name {task_name!r}; known tasks: "
                         f"{', '.join(sorted(PROCESSORS))}")
    return PROCESSORS[name](**kwargs)


def submission_label(task_name: str, label: str) -> str:
    """The value the GLUE leaderboard's `<TASK>.tsv` expects for a predicted label: the data
    files' value ("0"/"1") where the task names its labels (SST-2's "positive" is "1"), else the
    label itself."""
    processor = PROCESSORS.get(normalize_task_name(task_name))
    names = getattr(processor, "label_names", None)
    if isinstance(processor, type) and names and label in names:
        return processor.labels[names.index(label)]
    return label
