"""SQuAD v1.1 / v2.0: reading the JSON files and Google's run_squad feature creation.

The rules are those of Google's run_squad.py, so that a checkpoint fine-tuned there or here sees
the same inputs:

1. A context is split into words on whitespace (space, tab, CR, LF, U+202F); every character
   knows its word (`char_to_word_offset`), which turns an answer's `answer_start` into word
   positions.
2. Every word is WordPiece-tokenized on its own; each piece remembers its word
   (`tok_to_orig_index`). Here the words of a whole batch of examples go through the in-graph
   `bert_tf.BertTokenizer` in one call (each distinct word once), which equals Google's Python
   tokenizer piece for piece (tests/test_data_squad.py checks it against a pure-Python
   reference on real SQuAD questions).
3. The question is cut to `max_query_length` pieces; the context pieces are cut into doc-stride
   windows of `max_seq_length - len(question) - 3` pieces (`bert_tf.data.windows`), and every
   context piece of a window records whether that window is its "max context" one.
4. Training answers are mapped to piece positions and tightened by `_improve_answer_span`; an
   answer outside a window, or an impossible question (v2), points at [CLS] (position 0).

Features become Google's records (`unique_ids`, `input_ids`, `input_mask`, `segment_ids`, and for
training `start_positions`, `end_positions`, `is_impossible`) in a TFRecord file or a
`tf.data.Dataset`. One deliberate difference: a context without any token gets one window holding
only the question (Google's loop yields no feature and the question silently gets no prediction).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.data.windows import doc_spans, max_context_span
from bert_tf.errors import InputError

CLS, SEP = "[CLS]", "[SEP]"
# Google's run_squad starts unique ids here so that they never collide with example indexes.
FIRST_UNIQUE_ID = 1000000000
_TOKENIZE_CHUNK = 4096  # distinct words per tokenizer call: bounds graph-side memory


class SquadError(InputError):
    """A SQuAD JSON file that does not follow the format."""


@dataclasses.dataclass
class SquadExample:
    """One question on one context, words split as Google's read_squad_examples does.

    `start_position`/`end_position` are word indexes into `doc_tokens` (training only; -1 for an
    impossible question); `char_to_word_offset[i]` is the word of context character i.
    """

    qas_id: str
    question_text: str
    context_text: str
    doc_tokens: list[str]
    char_to_word_offset: list[int]
    orig_answer_text: str = ""
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False
    answers: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SquadFeature:
    """One window of one example, as Google's InputFeatures.

    `tokens` are the pieces `[CLS] question [SEP] context window [SEP]` (unpadded);
    `token_to_orig_map` / `token_is_max_context` are keyed by position in `tokens`;
    `start_position`/`end_position` are positions in `tokens` (training only, 0 = [CLS]).
    """

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]
    token_is_max_context: dict[int, bool]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False


def is_whitespace(c: str) -> bool:
    """Google's word separator for contexts (U+202F, narrow no-break space, included)."""
    return c in " \t\r\n" or ord(c) == 0x202F


def split_words(text: str) -> tuple[list[str], list[int]]:
    """Whitespace words of `text` and the word index of every character (a space belongs to the
    word before it; leading spaces to word -1)."""
    words: list[str] = []
    char_to_word: list[int] = []
    prev_is_whitespace = True
    for c in text:
        if is_whitespace(c):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                words.append(c)
            else:
                words[-1] += c
            prev_is_whitespace = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SquadError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SquadError(f"{where}: field {key!r} should be a {kind.__name__}, "
                         f"got {type(value).__name__}")
    return value


def _training_answer(example: SquadExample, qa: dict, where: str) -> bool:
    """Sets the example's answer from `qa`'s single answer; False when the answer text is not
    found at its offset (Google skips such questions with a warning)."""
    answers = _field(qa, "answers", list, where)
    if len(answers) != 1:
        raise SquadError(f"{where}: a training question needs exactly 1 answer, got "
                         f"{len(answers)}")
    text = _field(answers[0], "text", str, where)
    offset = _field(answers[0], "answer_start", int, where)
    if not text or offset < 0 or offset + len(text) > len(example.context_text):
        raise SquadError(f"{where}: answer {text!r} at answer_start={offset} does not lie in "
                         f"the context ({len(example.context_text)} characters)")
    example.orig_answer_text = text
    example.start_position = example.char_to_word_offset[offset]
    example.end_position = example.char_to_word_offset[offset + len(text) - 1]
    actual = " ".join(example.doc_tokens[example.start_position:example.end_position + 1])
    return actual.find(" ".join(text.split())) != -1


def read_squad_examples(input_file: str | os.PathLike, is_training: bool,
                        version_2_with_negative: bool = False) -> list[SquadExample]:
    """Reads a SQuAD JSON file into examples (Google's read_squad_examples).

    Args:
      input_file: a SQuAD v1.1 or v2.0 JSON file.
      is_training: read the answer positions (each question must have exactly one answer, or be
        `is_impossible` in v2). Questions whose answer text is not at its `answer_start` are
        skipped, as in Google's code.
      version_2_with_negative: honour `is_impossible` (SQuAD v2.0).

    Returns:
      The examples in file order. Every example also keeps the texts of all its gold `answers`.

    Raises:
      SquadError: the file is not valid JSON or not in SQuAD's layout; the message names the file
        and the question id.
    """
    try:
        with open(input_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SquadError(f"{input_file}: cannot read a SQuAD JSON file: {e}") from e
    return read_squad_examples_from_dict(data, input_file, is_training, version_2_with_negative)


def read_squad_examples_from_dict(data: Any, input_file: str | os.PathLike, is_training: bool,
                                  version_2_with_negative: bool = False) -> list[SquadExample]:
    """`read_squad_examples` on already parsed JSON; `input_file` names it in errors."""
    articles = _field(data, "data", list, str(input_file))
    examples = []
    for a, article in enumerate(articles):
        paragraphs = _field(article, "paragraphs", list, f"{input_file}: data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where = f"{input_file}: data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where)
            words, char_to_word = split_words(context)
            for q, qa in enumerate(_field(paragraph, "qas", list, where)):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), (str, int)):
                    raise SquadError(f"{where}.qas[{q}]: missing or non-string field 'id'")
                qas_id = str(qa["id"])
                qwhere = f"{input_file}: question id {qas_id!r}"
                example = SquadExample(
                    qas_id=qas_id, question_text=_field(qa, "question", str, qwhere),
                    context_text=context, doc_tokens=words, char_to_word_offset=char_to_word)
                example.answers = [_field(x, "text", str, qwhere)
                                   for x in qa.get("answers", []) if isinstance(x, dict)]
                if version_2_with_negative:
                    example.is_impossible = bool(qa.get("is_impossible", False))
                if is_training:
                    if example.is_impossible:
                        example.start_position = example.end_position = -1
                    elif not _training_answer(example, qa, qwhere):
                        continue
                examples.append(example)
    return examples


# --------------------------------------------------------------------------------------------
# Feature creation
# --------------------------------------------------------------------------------------------


class _PieceCache:
    """WordPiece tokens of strings through the in-graph tokenizer, each distinct string once."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._tokens = tokenizer.vocab.tokens
        self._cache: dict[str, list[str]] = {}

    def add(self, texts: Iterable[str]) -> None:
        new = sorted({t for t in texts if t not in self._cache})
        for i in range(0, len(new), _TOKENIZE_CHUNK):
            chunk = new[i:i + _TOKENIZE_CHUNK]
            ragged = self._tokenizer.tokenize(tf.constant(chunk, dtype=tf.string))
            ids = ragged.flat_values.numpy()
            splits = ragged.row_splits.numpy()
            for j, text in enumerate(chunk):
                self._cache[text] = [self._tokens[k] for k in ids[splits[j]:splits[j + 1]]]

    def __getitem__(self, text: str) -> list[str]:
        return self._cache[text]


def improve_answer_span(doc_tokens: Sequence[str], input_start: int, input_end: int,
                        answer_tokens: Sequence[str]) -> tuple[int, int]:
    """The smallest piece span inside [input_start, input_end] whose pieces equal the answer's
    own tokenization (Google's _improve_answer_span): e.g. "1895" inside "(1895-1943)."."""
    tok_answer_text = " ".join(answer_tokens)
    for new_start in range(input_start, input_end + 1):
        for new_end in range(input_end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start:new_end + 1]) == tok_answer_text:
                return new_start, new_end
    return input_start, input_end


def _answer_piece_span(example: SquadExample, orig_to_tok: list[int], num_pieces: int,
                       all_doc_tokens: list[str], pieces: _PieceCache) -> tuple[int, int]:
    if example.is_impossible:
        return -1, -1
    start = orig_to_tok[example.start_position]
    if example.end_position < len(example.doc_tokens) - 1:
        end = orig_to_tok[example.end_position + 1] - 1
    else:
        end = num_pieces - 1
    return improve_answer_span(all_doc_tokens, start, end, pieces[example.orig_answer_text])


def _example_features(example: SquadExample, example_index: int, unique_id: int,
                      pieces: _PieceCache, vocab, max_seq_length: int, doc_stride: int,
                      max_query_length: int, is_training: bool) -> list[SquadFeature]:
    query_tokens = pieces[example.question_text][:max_query_length]
    tok_to_orig, orig_to_tok, all_doc_tokens = [], [], []
    for i, word in enumerate(example.doc_tokens):
        orig_to_tok.append(len(all_doc_tokens))
        for piece in pieces[word]:
            tok_to_orig.append(i)
            all_doc_tokens.append(piece)
    if is_training:
        tok_start, tok_end = _answer_piece_span(example, orig_to_tok, len(all_doc_tokens),
                                                all_doc_tokens, pieces)
    spans = doc_spans(len(all_doc_tokens), max_seq_length - len(query_tokens) - 3, doc_stride)
    doc_offset = len(query_tokens) + 2
    features = []
    for span_index, span in enumerate(spans):
        tokens = [CLS, *query_tokens, SEP, *all_doc_tokens[span.start:span.end], SEP]
        token_to_orig_map, token_is_max_context = {}, {}
        for i in range(span.length):
            token_to_orig_map[doc_offset + i] = tok_to_orig[span.start + i]
            token_is_max_context[doc_offset + i] = (
                max_context_span(spans, span.start + i) == span_index)
        segment_ids = [0] * doc_offset + [1] * (span.length + 1)
        padding = [0] * (max_seq_length - len(tokens))
        feature = SquadFeature(
            unique_id=unique_id + span_index, example_index=example_index,
            doc_span_index=span_index, tokens=tokens, token_to_orig_map=token_to_orig_map,
            token_is_max_context=token_is_max_context,
            input_ids=[vocab.id(t) for t in tokens] + padding,
            input_mask=[1] * len(tokens) + padding, segment_ids=segment_ids + padding,
            is_impossible=example.is_impossible)
        if is_training:
            inside = span.start <= tok_start and tok_end < span.end
            if example.is_impossible or not inside:
                feature.start_position = feature.end_position = 0
            else:
                feature.start_position = tok_start - span.start + doc_offset
                feature.end_position = tok_end - span.start + doc_offset
        features.append(feature)
    return features


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer,
                                 max_seq_length: int = 384, doc_stride: int = 128,
                                 max_query_length: int = 64, is_training: bool = False,
                                 batch_size: int = 256) -> Iterator[SquadFeature]:
    """Google's convert_examples_to_features with the tokenization done in the graph.

    Args:
      examples: from `read_squad_examples` (with the same `is_training`).
      tokenizer: a `bert_tf.BertTokenizer` (its vocab and casing are the model's).
      max_seq_length: model input length; every feature is padded to it.
      doc_stride: how far consecutive windows over a long context start apart, in pieces.
      max_query_length: questions are cut to this many pieces.
      is_training: compute `start_position`/`end_position`.
      batch_size: examples whose words are tokenized together in one tokenizer call.

    Yields:
      `SquadFeature`s, unique ids counting up from 1000000000 as in Google's code.
    """
    if max_seq_length < max_query_length + 4:
        raise InputError(f"--max_seq_length={max_seq_length} leaves no room for the context after "
                         f"a question of --max_query_length={max_query_length} pieces and the "
                         "3 special tokens")
    vocab = tokenizer.vocab
    unique_id = FIRST_UNIQUE_ID
    for first in range(0, len(examples), batch_size):
        batch = examples[first:first + batch_size]
        pieces = _PieceCache(tokenizer)
        texts = set()
        for example in batch:
            texts.update(example.doc_tokens)
            texts.add(example.question_text)
            if is_training and not example.is_impossible:
                texts.add(example.orig_answer_text)
        pieces.add(texts)
        for i, example in enumerate(batch):
            features = _example_features(example, first + i, unique_id, pieces, vocab,
                                         max_seq_length, doc_stride, max_query_length, is_training)
            unique_id += len(features)
            yield from features


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _feature_columns(feature: SquadFeature, is_training: bool) -> dict[str, list[int]]:
    columns = {"unique_ids": [feature.unique_id], "input_ids": feature.input_ids,
               "input_mask": feature.input_mask, "segment_ids": feature.segment_ids}
    if is_training:
        columns.update(start_positions=[feature.start_position],
                       end_positions=[feature.end_position],
                       is_impossible=[int(feature.is_impossible)])
    return columns


def record_spec(max_seq_length: int, is_training: bool) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec of the records written by `write_features` (Google's names)."""
    spec = {"unique_ids": tf.io.FixedLenFeature([], tf.int64)}
    for name in ("input_ids", "input_mask", "segment_ids"):
        spec[name] = tf.io.FixedLenFeature([max_seq_length], tf.int64)
    if is_training:
        for name in ("start_positions", "end_positions", "is_impossible"):
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def write_features(features: Iterable[SquadFeature], output_file: str | os.PathLike,
                   is_training: bool) -> int:
    """Writes features as Google's run_squad TFRecords (atomically); returns how many."""
    tmp = f"{os.fspath(output_file)}.tmp-{os.getpid()}"
    count = 0
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for feature in features:
                example = tf.train.Example(features=tf.train.Features(feature={
                    k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                    for k, v in _feature_columns(feature, is_training).items()}))
                writer.write(example.SerializeToString())
                count += 1
        os.replace(tmp, output_file)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return count


def features_dataset(features: Sequence[SquadFeature], is_training: bool) -> tf.data.Dataset:
    """In-memory features as a `tf.data.Dataset` of dicts (int32, Google's names), unbatched."""
    if not features:
        raise InputError("no SQuAD features to make a dataset from (is the input file empty?)")
    rows = [_feature_columns(f, is_training) for f in features]
    columns = {name: np.array([row[name] for row in rows], dtype=np.int32) for name in rows[0]}
    for name in ("unique_ids", "start_positions", "end_positions", "is_impossible"):
        if name in columns:
            columns[name] = columns[name][:, 0]
    columns["unique_ids"] = columns["unique_ids"].astype(np.int64)
    return tf.data.Dataset.from_tensor_slices(columns)
