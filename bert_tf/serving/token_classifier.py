"""Token classification (NER) serving: raw strings in, entities out, in the graph.

`TokenClassifierServingModule.serving_default(text)` (text: string [B]) returns, for each text,
its entities as dense tensors padded to E = the batch's largest entity count:

    entity_text    string  [B, E]  the entity as it appears in the text ("" = padding)
    entity_type    string  [B, E]  the type, e.g. "PER" for tags B-PER/I-PER ("" = padding)
    score          float32 [B, E]  mean over the entity's words of the predicted tag's softmax
                                   probability (0 = padding)
    start, end     int32   [B, E]  offsets into the text in Unicode code points (Python str
                                   indices), end exclusive: text[start:end] == entity_text
                                   (-1 = padding)
    num_entities   int32   [B]

How the graph gets there (the same steps as `predict_entities`, the in-process NumPy path, and as
training's `bert_tf.data.token_alignment`): the words are Google's basic tokens of the text
(`bert_tf.text.word_offsets`: whitespace, each punctuation mark, each CJK character), each word
is WordPiece-tokenized, a text longer than `seq_length - 2` pieces is cut into doc-stride windows
(`bert_tf.data.windows` rules), each word is predicted at its first piece in the window where it
has the most context, and entities are read from the words' IOB2 tags by conlleval's rules
(`bert_tf.data.ner_metrics.entity_spans`). Invalid UTF-8 bytes are dropped before the offsets
are counted (as the tokenizer drops them).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_tf.data.conll import OUTSIDE, check_labels
from bert_tf.data.ner_metrics import entity_spans
from bert_tf.data.token_alignment import create_features
from bert_tf.serving.modules import ServingModule
from bert_tf.text.preprocessor import BertPreprocessor
from bert_tf.text.word_offsets import words_with_offsets

_TEXT = tf.TensorSpec([None], tf.string, name="text")


def default_doc_stride(seq_length: int) -> int:
    """Half a window: every word then has at least a quarter window of context on both sides
    when a text needs several windows."""
    return max(1, (seq_length - 2) // 2)


@dataclasses.dataclass(frozen=True)
class Entity:
    """One predicted entity: `text[start:end]` (code points) is `text`."""

    text: str
    type: str
    score: float
    start: int
    end: int


def _label_parts(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per label: is it a B- tag, its type index (-1 for O); and the type names."""
    types = sorted({label[2:] for label in labels if label != OUTSIDE})
    is_begin = np.array([label.startswith("B-") for label in labels])
    type_ids = np.array([types.index(label[2:]) if label != OUTSIDE else -1 for label in labels],
                        np.int32)
    return is_begin, type_ids, types


class TokenClassifierServingModule(ServingModule):
    """A `BertTokenClassifier` behind `serving_default(text)` → entities; see the module
    docstring.

    Args:
        model: a `BertTokenClassifier` with len(labels) outputs.
        preprocessor: the `BertPreprocessor` of training (vocab, casing; its seq_length is the
            window length).
        labels: the IOB2 labels in id order (labels.txt).
        doc_stride: window stride in pieces for long texts; default `default_doc_stride`.
    """

    task = "token_classifier"
    # Entities are read from one text; the base class's pair signature does not apply (and
    # tf.saved_model.save would trace every tf.function the module has).
    serve_text_pair = None

    def __init__(self, model, preprocessor: BertPreprocessor, labels: Sequence[str],
                 doc_stride: int | None = None, name: str | None = None):
        super().__init__(model, preprocessor, name=name)
        self.labels = check_labels(labels, "token classifier labels")
        if len(self.labels) != model.num_labels:
            raise ValueError(f"{len(self.labels)} labels {self.labels} for a model with "
                             f"{model.num_labels} outputs")
        self.doc_stride = doc_stride or default_doc_stride(preprocessor.seq_length)
        is_begin, type_ids, types = _label_parts(self.labels)
        self._is_begin = tf.constant(is_begin)
        self._type_ids = tf.constant(type_ids)
        self._type_names = tf.constant(types or [""], tf.string)

    def signatures(self):
        return {"serving_default": self.serve_text.get_concrete_function()}

    @tf.function(input_signature=[_TEXT])
    def serve_text(self, text):
        return self.entities(text)

    def entities(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """The signature's outputs for string [B] `text` (callable eagerly too)."""
        words = words_with_offsets(self.preprocessor.tokenizer, text)
        probabilities = self._word_probabilities(words)  # [N, C] for the N words of the batch
        return self._decode(words, probabilities)

    # ---- windows and the model ----------------------------------------------------------------

    def _word_probabilities(self, words) -> tf.Tensor:
        tokenizer = self.preprocessor.tokenizer
        pieces = tokenizer.tokenize(words.words.flat_values)  # [N, (P)], >= 1 piece per word
        text_of_word = words.words.value_rowids()  # [N]
        text_splits = tf.gather(pieces.row_splits, words.words.row_splits)  # [B + 1]
        flat_pieces = pieces.flat_values
        first = pieces.row_splits[:-1] - tf.gather(text_splits, text_of_word)  # [N] in its text
        num_pieces = text_splits[1:] - text_splits[:-1]  # [B]

        max_tokens = tf.constant(self.preprocessor.seq_length - 2, tf.int64)
        stride = tf.constant(self.doc_stride, tf.int64)
        # doc_spans: windows start at k * stride until one reaches the end of the text.
        num_windows = 1 + tf.maximum(
            tf.zeros_like(num_pieces), (num_pieces - max_tokens + stride - 1) // stride)
        window_splits = tf.concat([[0], tf.cumsum(num_windows)], axis=0)
        windows = tf.ragged.range(num_windows)  # [B, (K)]: each text's window numbers
        window_text = windows.value_rowids()
        window_start = windows.flat_values * stride
        window_length = tf.minimum(tf.gather(num_pieces, window_text) - window_start, max_tokens)

        # max_context_span for each word's first piece: best score, the first window on ties
        # (the tiny per-window penalty breaks exact ties; real differences are >= 0.01).
        k = tf.range(tf.reduce_max(tf.concat([[1], num_windows], 0)), dtype=tf.int64)  # [K]
        word_windows = tf.gather(num_windows, text_of_word)[:, None]  # [N, 1]
        start = k[None, :] * stride
        length = tf.minimum(tf.gather(num_pieces, text_of_word)[:, None] - start, max_tokens)
        p = first[:, None]
        inside = (k[None, :] < word_windows) & (start <= p) & (p < start + length)
        score = (tf.cast(tf.minimum(p - start, start + length - 1 - p), tf.float64)
                 + 0.01 * tf.cast(length, tf.float64) - 1e-6 * tf.cast(k[None, :], tf.float64))
        best = tf.argmax(tf.where(inside, score, -np.inf), axis=1)  # [N]
        word_window = tf.gather(window_splits, text_of_word) + best
        word_position = first - best * stride + 1  # after [CLS]

        inputs = self._window_inputs(flat_pieces, text_splits, window_text, window_start,
                                     window_length)
        logits = tf.cast(self.model(inputs, training=False), tf.float32)  # [W, L, C]
        probabilities = tf.nn.softmax(logits, axis=-1)
        return tf.gather_nd(probabilities, tf.stack([word_window, word_position], axis=1))

    def _window_inputs(self, flat_pieces, text_splits, window_text, window_start, window_length):
        """`[CLS] window [SEP]` padded to the batch's longest window: the encoder inputs."""
        vocab = self.preprocessor.vocab
        seq = tf.reduce_max(tf.concat([[0], window_length], 0)) + 2
        j = tf.range(seq)[None, :]  # [1, L]
        length = window_length[:, None]
        index = tf.gather(text_splits, window_text)[:, None] + window_start[:, None] + j - 1
        inside = (j >= 1) & (j <= length)
        safe = tf.clip_by_value(index, 0, tf.maximum(tf.size(flat_pieces, tf.int64) - 1, 0))
        pieces = tf.gather(tf.concat([flat_pieces, [0]], 0), safe)
        ids = tf.where(inside, pieces, vocab.pad_id)
        ids = tf.where(j == 0, vocab.cls_id, tf.where(j == length + 1, vocab.sep_id, ids))
        mask = tf.cast(j < length + 2, tf.int32)
        return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": tf.zeros_like(mask)}

    # ---- entities -----------------------------------------------------------------------------

    def _decode(self, words, probabilities) -> dict[str, tf.Tensor]:
        label = tf.argmax(probabilities, axis=1, output_type=tf.int32)  # [N]
        prob = tf.reduce_max(probabilities, axis=1)
        entity_type = tf.gather(self._type_ids, label)
        text_of_word = words.words.value_rowids()
        n = tf.range(tf.size(label, tf.int64))
        first_word = n == tf.gather(words.words.row_splits, text_of_word)
        previous_type = tf.where(first_word, -1, tf.roll(entity_type, 1, axis=0))
        # IOB2 under conlleval's rules: an entity starts at B-X, or at I-X after O, another type
        # or the text's start; it continues over the I-X of its type that follow.
        in_entity = entity_type >= 0
        starts = in_entity & (tf.gather(self._is_begin, label) | (previous_type != entity_type))
        entity_id = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        count = tf.reduce_sum(tf.cast(starts, tf.int64))
        member_id = tf.boolean_mask(entity_id, in_entity)

        def per_entity(values, reduce):
            return reduce(tf.boolean_mask(values, in_entity), member_id, count)

        score = per_entity(prob, tf.math.unsorted_segment_mean)
        char_end = per_entity(words.char_end.flat_values, tf.math.unsorted_segment_max)
        byte_end = per_entity(words.byte_end.flat_values, tf.math.unsorted_segment_max)
        char_start = tf.boolean_mask(words.char_start.flat_values, starts)
        byte_start = tf.boolean_mask(words.byte_start.flat_values, starts)
        row = tf.boolean_mask(text_of_word, starts)
        type_name = tf.gather(self._type_names, tf.boolean_mask(entity_type, starts))
        text = tf.strings.substr(tf.gather(words.text, row), byte_start, byte_end - byte_start,
                                 unit="BYTE")
        nrows = tf.shape(words.text, tf.int64)[0]

        def padded(values, default):
            ragged = tf.RaggedTensor.from_value_rowids(values, row, nrows=nrows)
            return ragged.to_tensor(default)

        return {"entity_text": padded(text, ""), "entity_type": padded(type_name, ""),
                "score": padded(score, 0.0),
                "start": padded(tf.cast(char_start, tf.int32), -1),
                "end": padded(tf.cast(char_end, tf.int32), -1),
                "num_entities": tf.cast(tf.math.bincount(tf.cast(row, tf.int32),
                                                         minlength=tf.cast(nrows, tf.int32),
                                                         maxlength=tf.cast(nrows, tf.int32)),
                                        tf.int32)}


def predict_entities(model, preprocessor: BertPreprocessor, labels: Sequence[str],
                     texts: Sequence[str], doc_stride: int | None = None,
                     batch_size: int = 32) -> list[list[Entity]]:
    """The in-process path: the same entities as the serving signature, computed with the
    training features (`create_features`), the model in Keras and NumPy decoding.

    Args:
        model: a `BertTokenClassifier`.
        preprocessor: its `BertPreprocessor` (tokenizer, seq_length = window length).
        labels: IOB2 labels in id order.
        texts: raw strings.
        doc_stride: window stride (default `default_doc_stride(seq_length)`).
        batch_size: windows per model call.

    Returns:
        Per text, its entities in order.
    """
    labels = check_labels(labels, "token classifier labels")
    doc_stride = doc_stride or default_doc_stride(preprocessor.seq_length)
    words = words_with_offsets(preprocessor.tokenizer, tf.constant(list(texts), tf.string))
    sentences = [[w.decode("utf-8") for w in row] for row in words.words.to_list()]
    features = create_features(preprocessor.tokenizer, sentences, None, preprocessor.seq_length,
                               doc_stride)
    probabilities = np.zeros(features.word_index.shape + (len(labels),), np.float32)
    for begin in range(0, len(features), batch_size):
        batch = {name: features.arrays[name][begin:begin + batch_size]
                 for name in ("input_word_ids", "input_mask", "input_type_ids")}
        logits = tf.cast(model(batch, training=False), tf.float32)
        probabilities[begin:begin + batch_size] = tf.nn.softmax(logits, axis=-1).numpy()
    out = []
    for i, word_probabilities in enumerate(features.merge(probabilities)):
        text = words.text[i].numpy().decode("utf-8")
        starts, ends = words.char_start[i].numpy(), words.char_end[i].numpy()
        predicted = word_probabilities.argmax(axis=-1) if len(word_probabilities) else []
        tags = [labels[j] for j in predicted]
        out.append([
            Entity(text[starts[a]:ends[b - 1]], entity_type,
                   float(np.mean(word_probabilities[a:b].max(axis=-1))), int(starts[a]),
                   int(ends[b - 1]))
            for entity_type, a, b in entity_spans(tags)])
    return out
