"""Word ↔ WordPiece alignment and doc-stride windows for token classification (NER).

A sentence is a list of words (the tokens of a CoNLL file) with one label each. Every word is
WordPiece-tokenized with the in-graph `BertTokenizer` (all words of many sentences in one call);
the word's label goes on its first piece, and the other pieces are not scored. A word whose
tokenization is empty (only control or zero-width characters) is fed as one `[UNK]`, so every
word has a first piece and a prediction.

Sentences with more pieces than fit between `[CLS]` and `[SEP]` are cut into overlapping windows
(`bert_tf.data.windows.doc_spans`, Google's doc-stride rule). Each word is scored in exactly one
window: the one where its first piece has the most context (`max_context_span`). So
`label_weights` is 1 at the first piece of a word in that window and 0 elsewhere; the loss counts
every word once, and merging the windows' predictions back to the words is a scatter (never an
"O" by truncation).

    >>> features = create_features(  # doctest: +SKIP
    ...     tokenizer, [["Paris", "is", "nice"]], [[1, 0, 0]], max_seq_length=8, doc_stride=3)
    >>> features.dataset()  # input_word_ids, input_mask, input_type_ids, label_ids, label_weights
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_tf.data.conll import ConllFile, check_known_tags
from bert_tf.data.windows import doc_spans, max_context_span
from bert_tf.errors import InputError

FEATURE_NAMES = ("input_word_ids", "input_mask", "input_type_ids", "label_ids", "label_weights")
# Words per tokenizer call: large enough to amortise the call, small enough to bound memory.
_WORDS_PER_CALL = 1 << 16


def word_pieces(tokenizer, sentences: Sequence[Sequence[str]]) -> list[list[np.ndarray]]:
    """The WordPiece ids of every word, tokenized in the graph many sentences at a time.

    Args:
        tokenizer: a `bert_tf.BertTokenizer` (or anything with its `tokenize` and `unk_id`).
        sentences: per sentence, its words.

    Returns:
        Per sentence, per word, an int32 array of at least one id (`[UNK]` for a word whose
        tokenization is empty).
    """
    flat = [w for words in sentences for w in words]
    ids, splits = [], [0]
    for begin in range(0, len(flat), _WORDS_PER_CALL):
        ragged = tokenizer.tokenize(tf.constant(flat[begin:begin + _WORDS_PER_CALL], tf.string))
        ids.append(ragged.flat_values.numpy())
        splits.extend((ragged.row_splits.numpy()[1:] + splits[-1]).tolist())
    values = np.concatenate(ids) if ids else np.zeros([0], np.int32)
    unk = np.array([tokenizer.unk_id], np.int32)
    pieces, k = [], 0
    for words in sentences:
        row = []
        for _ in words:
            piece = values[splits[k]:splits[k + 1]]
            row.append(piece if piece.size else unk)
            k += 1
        pieces.append(row)
    return pieces


@dataclasses.dataclass
class TokenFeatures:
    """Model inputs for windows over sentences, and the map back to the words.

    Attributes:
        arrays: FEATURE_NAMES → int32 [N, max_seq_length] (label_weights float32), one row per
            window.
        sentence_index: int32 [N], the sentence of each window.
        word_index: int32 [N, max_seq_length], the word scored at each position (where
            label_weights is 1), else -1.
        num_words: words per sentence.
    """

    arrays: dict[str, np.ndarray]
    sentence_index: np.ndarray
    word_index: np.ndarray
    num_words: list[int]

    def __len__(self) -> int:
        return len(self.sentence_index)

    def dataset(self) -> tf.data.Dataset:
        """A tf.data.Dataset of one dict of FEATURE_NAMES per window."""
        return tf.data.Dataset.from_tensor_slices(dict(self.arrays))

    def merge(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-position values of the windows → per-word values of the sentences.

        Args:
            values: [N, max_seq_length, ...] (e.g. predicted label ids, probabilities).

        Returns:
            Per sentence, [num_words, ...]: each word's value from its max-context window.
        """
        values = np.asarray(values)
        if values.shape[:2] != self.word_index.shape:
            raise ValueError(f"values of shape {values.shape} for features of shape "
                             f"{self.word_index.shape}")
        out = [np.zeros((n,) + values.shape[2:], values.dtype) for n in self.num_words]
        rows, cols = np.nonzero(self.word_index >= 0)
        for r, c in zip(rows.tolist(), cols.tolist()):
            out[self.sentence_index[r]][self.word_index[r, c]] = values[r, c]
        return out


def _windows(pieces: list[np.ndarray], max_tokens: int, doc_stride: int):
    """For one sentence: its flat piece ids, the position of each word's first piece, the
    windows, and each word's max-context window."""
    lengths = [len(p) for p in pieces]
    flat = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros([0], np.int32)
    starts = np.cumsum([0] + lengths[:-1]).astype(np.int64) if pieces else np.zeros([0], np.int64)
    spans = doc_spans(len(flat), max_tokens, doc_stride)
    best = [max_context_span(spans, int(s)) for s in starts]
    return flat, starts, spans, best


def create_features(tokenizer, sentences: Sequence[Sequence[str]],
                    label_ids: Sequence[Sequence[int]] | None, max_seq_length: int,
                    doc_stride: int) -> TokenFeatures:
    """Windows of `[CLS] pieces [SEP]` with the first-piece labels of every sentence.

    Args:
        tokenizer: the `BertTokenizer` of the model's vocab and casing.
        sentences: per sentence, its words.
        label_ids: per sentence, the label id of each word; None at prediction (label_ids 0).
        max_seq_length: the model's input length L (at least 3).
        doc_stride: how far consecutive windows of one long sentence start apart, in pieces.

    Returns:
        TokenFeatures with N >= len(sentences) windows (one per sentence that fits).
    """
    if max_seq_length < 3:
        raise InputError(f"--max_seq_length must be at least 3 ([CLS], a token, [SEP]) for token "
                         f"classification, got {max_seq_length}")
    if label_ids is not None:
        if len(label_ids) != len(sentences):
            raise ValueError(f"{len(label_ids)} label rows for {len(sentences)} sentences")
        for i, (words, labels) in enumerate(zip(sentences, label_ids)):
            if len(words) != len(labels):
                raise ValueError(f"sentence {i}: {len(words)} words but {len(labels)} labels")
    vocab = tokenizer.vocab
    max_tokens = max_seq_length - 2
    rows = {name: [] for name in FEATURE_NAMES}
    sentence_index, word_index = [], []
    for i, pieces in enumerate(word_pieces(tokenizer, sentences)):
        flat, starts, spans, best = _windows(pieces, max_tokens, doc_stride)
        for j, span in enumerate(spans):
            ids = np.full([max_seq_length], vocab.pad_id, np.int32)
            ids[0] = vocab.cls_id
            ids[1:span.length + 1] = flat[span.start:span.end]
            ids[span.length + 1] = vocab.sep_id
            mask = np.zeros([max_seq_length], np.int32)
            mask[:span.length + 2] = 1
            labels = np.zeros([max_seq_length], np.int32)
            words = np.full([max_seq_length], -1, np.int32)
            for w, (start, window) in enumerate(zip(starts.tolist(), best)):
                if window == j:
                    position = start - span.start + 1
                    words[position] = w
                    if label_ids is not None:
                        labels[position] = label_ids[i][w]
            rows["input_word_ids"].append(ids)
            rows["input_mask"].append(mask)
            rows["input_type_ids"].append(np.zeros([max_seq_length], np.int32))
            rows["label_ids"].append(labels)
            rows["label_weights"].append((words >= 0).astype(np.float32))
            sentence_index.append(i)
            word_index.append(words)
    empty = np.zeros([0, max_seq_length], np.int32)
    arrays = {name: np.stack(value) if value else empty for name, value in rows.items()}
    arrays["label_weights"] = arrays["label_weights"].astype(np.float32)
    return TokenFeatures(arrays, np.asarray(sentence_index, np.int32),
                         np.stack(word_index) if word_index else empty,
                         [len(words) for words in sentences])


def conll_features(tokenizer, conll: ConllFile, labels: Sequence[str], max_seq_length: int,
                   doc_stride: int) -> TokenFeatures:
    """`create_features` for a CoNLL file's sentences with their tags as ids of `labels`
    (labels.txt order); a tag outside `labels` raises ConllError naming the file and line."""
    check_known_tags(conll, labels)
    ids = {label: i for i, label in enumerate(labels)}
    return create_features(tokenizer, [s.words for s in conll.sentences],
                           [[ids[t] for t in s.tags] for s in conll.sentences], max_seq_length,
                           doc_stride)
