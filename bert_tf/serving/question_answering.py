"""Serving module for extractive question answering: raw (question, context) strings in, the
answer span out, with Google's run_squad windowing done inside the graph.

`serving_default(question, context)` (string [B] each) returns, per row:

- `answer` string [B]: the answer, cut from the context by the offsets below;
- `start`, `end` int32 [B]: the answer is `context[start:end]` with **Unicode code point**
  offsets (Python `str` indexing; a JavaScript client must convert for UTF-16 surrogate pairs);
  -1/-1 with answer "" when there is no answer (v2 no-answer, or a context without tokens);
- `score` float32 [B]: start_logit + end_logit of the best span (also reported when a v2 model
  answers "no answer"; 0 when the context has no tokens);
- v2 models (`version_2_with_negative=True`) also return `is_impossible` bool [B] (Google's
  rule: `null_score_diff > null_score_diff_threshold`) and `null_score_diff` float32 [B]
  (what Google writes to null_odds.json).

The graph follows Google's run_squad: the question is cut to `max_query_length` pieces; the
context's pieces are cut into doc-stride windows of `max_seq_length - len(question) - 3`; a span
is valid when it lies in the context, starts in a piece's max-context window, ends at or after
its start and has at most `max_answer_length` pieces. The best valid span by start_logit +
end_logit over all windows wins: that is the first entry of Google's n-best list when
`n_best_size` is large enough to keep every position (here it is exact, with no top-k cut). Its
text is the context's characters from the first to the last piece, which is what Google's
get_final_text returns, except inside runs of several spaces (Google joins words with one space).
The windows of a batch are padded to the longest window, not to `max_seq_length`.
"""
from __future__ import annotations

import tensorflow as tf

from bert_tf.text.offsets import tokenize_with_char_offsets

_QUESTION = tf.TensorSpec([None], tf.string, name="question")
_CONTEXT = tf.TensorSpec([None], tf.string, name="context")


class _Untracked:
    """A plain holder: tf.Module does not walk into it when saving."""

    def __init__(self, model, preprocessor):
        self.model, self.preprocessor = model, preprocessor


def _windows(num_pieces, max_tokens, doc_stride):
    """Google's doc-stride windows of every row, flattened: (row, start, length) [W] each."""
    stride = tf.minimum(doc_stride, max_tokens)
    extra = tf.maximum(num_pieces - max_tokens, 0)
    count = 1 + (extra + stride - 1) // stride  # [B]
    index = tf.ragged.range(count)
    row = index.value_rowids()
    start = index.flat_values * tf.gather(stride, row)
    length = tf.minimum(tf.gather(num_pieces, row) - start, tf.gather(max_tokens, row))
    return row, start, length


def _max_context(row, start, length):
    """[W, (length)] bool: whether each window is its pieces' max-context window (Google's score
    min(left, right) + 0.01 * length in float64, the first window on ties)."""
    positions = tf.ragged.range(length)  # offset i in the window
    w = positions.value_rowids()
    i = positions.flat_values
    n = tf.gather(length, w)
    score = (tf.cast(tf.minimum(i, n - 1 - i), tf.float64)
             + 0.01 * tf.cast(n, tf.float64))
    # A piece's id: its row's first window start is 0, so (row, start + i) is unique.
    piece = tf.gather(row, w) * (tf.reduce_max(start + length) + 1) + tf.gather(start, w) + i
    ids, segment = tf.unique(piece)
    best = tf.math.unsorted_segment_max(score, segment, tf.size(ids))
    is_best = tf.equal(score, tf.gather(best, segment))
    first = tf.math.unsorted_segment_min(tf.where(is_best, w, tf.int64.max), segment, tf.size(ids))
    return positions.with_flat_values(tf.equal(tf.gather(first, segment), w))


class QuestionAnsweringServingModule(tf.Module):
    """A `BertSpanQA` behind `serving_default(question, context)`; see the module docstring.

    Args:
      model: a `BertSpanQA`.
      preprocessor: the `BertPreprocessor` of training (vocab, casing; its `seq_length` is
        max_seq_length).
      doc_stride, max_query_length, max_answer_length: Google's run_squad settings.
      version_2_with_negative: the model was trained on SQuAD v2.0 (adds the no-answer outputs).
      null_score_diff_threshold: v2 no-answer threshold (Google's flag).
    """

    task = "question_answering"

    def __init__(self, model, preprocessor, doc_stride: int = 128, max_query_length: int = 64,
                 max_answer_length: int = 30, version_2_with_negative: bool = False,
                 null_score_diff_threshold: float = 0.0, name: str | None = None):
        super().__init__(name=name)
        seq_length = preprocessor.seq_length
        if max_query_length + 4 > seq_length:
            raise ValueError(f"max_seq_length {seq_length} leaves no room for a context after "
                             f"a question of max_query_length {max_query_length}")
        if doc_stride < 1 or max_answer_length < 1:
            raise ValueError(f"doc_stride ({doc_stride}) and max_answer_length "
                             f"({max_answer_length}) must be positive")
        self._untracked = _Untracked(model, preprocessor)
        self.tf_vars = [v.value for v in model.variables]  # for the C++ loader (see modules.py)
        self.seq_length = seq_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.max_answer_length = max_answer_length
        self.version_2_with_negative = bool(version_2_with_negative)
        self.null_score_diff_threshold = float(null_score_diff_threshold)

    @property
    def model(self):
        return self._untracked.model

    @property
    def preprocessor(self):
        return self._untracked.preprocessor

    def _window_inputs(self, question_ids, context_ids, row, start, length):
        """Encoder inputs [W, T] for `[CLS] question [SEP] window [SEP]`, T = longest window."""
        tokenizer = self.preprocessor.tokenizer
        query = tf.gather(question_ids, row)
        first = tf.gather(context_ids.row_starts(), row) + start
        window = tf.RaggedTensor.from_row_lengths(
            tf.gather(context_ids.flat_values, tf.ragged.range(first, first + length).flat_values),
            length)
        num = tf.shape(row, out_type=tf.int64)[0]
        cls = tf.fill([num, 1], tf.constant(tokenizer.cls_id, tf.int32))
        sep = tf.fill([num, 1], tf.constant(tokenizer.sep_id, tf.int32))
        word_ids = tf.concat([cls, query, sep, window, sep], axis=1)
        type_ids = tf.concat([tf.zeros_like(cls), tf.zeros_like(query), tf.zeros_like(sep),
                              tf.ones_like(window), tf.ones_like(sep)], axis=1)
        return {"input_word_ids": word_ids.to_tensor(0),
                "input_mask": tf.ones_like(word_ids).to_tensor(0),
                "input_type_ids": type_ids.to_tensor(0)}

    def _best_spans(self, start_logits, end_logits, offset, length, max_context):
        """Per window: best valid (start, end) window positions and their float64 score."""
        t = tf.shape(start_logits)[1]
        pos = tf.range(t, dtype=tf.int64)[tf.newaxis, :]
        in_context = tf.logical_and(pos >= offset[:, None], pos < (offset + length)[:, None])
        w = max_context.value_rowids()
        index = tf.stack([w, tf.gather(offset, w) + tf.ragged.range(length).flat_values], axis=1)
        max_ctx = tf.scatter_nd(index, tf.cast(max_context.flat_values, tf.int32),
                                tf.shape(start_logits, out_type=tf.int64)) > 0
        ok_start = tf.logical_and(in_context, max_ctx)
        span_length = pos - tf.transpose(pos) + 1  # [start, end] → end - start + 1
        band = tf.logical_and(span_length >= 1, span_length <= self.max_answer_length)
        ok = tf.logical_and(tf.logical_and(ok_start[:, :, None], in_context[:, None, :]),
                            band[None])
        scores = (tf.cast(start_logits, tf.float64)[:, :, None]
                  + tf.cast(end_logits, tf.float64)[:, None, :])
        scores = tf.where(ok, scores, tf.constant(-float("inf"), tf.float64))
        flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
        best = tf.argmax(flat, axis=1, output_type=tf.int32)
        best_score = tf.reduce_max(flat, axis=1)
        return tf.cast(best // t, tf.int64), tf.cast(best % t, tf.int64), best_score

    def _answer(self, question, context):
        tokenizer = self.preprocessor.tokenizer
        question_ids = tokenizer.tokenize(question)[:, :self.max_query_length]
        context_ids, char_starts, char_ends = tokenize_with_char_offsets(tokenizer, context)
        query_len = tf.cast(question_ids.row_lengths(), tf.int64)
        row, start, length = _windows(context_ids.row_lengths(), self.seq_length - query_len - 3,
                                      tf.constant(self.doc_stride, tf.int64))
        inputs = self._window_inputs(question_ids, context_ids, row, start, length)
        out = self.model(inputs, training=False)
        offset = tf.gather(query_len, row) + 2  # first context position in the window
        s, e, score = self._best_spans(out["start_logits"], out["end_logits"], offset, length,
                                       _max_context(row, start, length))
        batch = tf.shape(question, out_type=tf.int64)[0]
        # The best window of each row (the first on ties).
        row_best = tf.math.unsorted_segment_max(score, row, batch)
        is_best = tf.equal(score, tf.gather(row_best, row))
        window = tf.math.unsorted_segment_min(
            tf.where(is_best, tf.range(tf.size(row, out_type=tf.int64)), tf.int64.max), row, batch)
        # (An all -inf row's segment max is float64's lowest, not -inf: test finiteness.)
        has_span = tf.math.unsorted_segment_max(
            tf.cast(tf.math.is_finite(score), tf.int32), row, batch) > 0
        window = tf.where(has_span, window, 0)
        first = tf.gather(start, window) + tf.gather(s, window) - tf.gather(offset, window)
        last = tf.gather(start, window) + tf.gather(e, window) - tf.gather(offset, window)
        piece_base = context_ids.row_starts()
        # One dummy slot after the pieces: a batch may have no piece at all.
        dummy = tf.size(char_starts.flat_values, out_type=tf.int64)
        char_start = tf.gather(tf.concat([char_starts.flat_values, [-1]], 0),
                               tf.where(has_span, piece_base + first, dummy))
        char_end = tf.gather(tf.concat([char_ends.flat_values, [-1]], 0),
                             tf.where(has_span, piece_base + last, dummy))
        result = {"has_span": has_span, "start": char_start, "end": char_end,
                  "score": tf.where(has_span, row_best, 0.0)}
        if self.version_2_with_negative:
            # [CLS] is position 0 ([:, :1] rather than [:, 0]: an empty batch has 0 columns).
            null = tf.reduce_sum(tf.cast(out["start_logits"][:, :1], tf.float64)
                                 + tf.cast(out["end_logits"][:, :1], tf.float64), axis=1)
            null_score = tf.math.unsorted_segment_min(null, row, batch)
            result["null_score_diff"] = tf.where(has_span, null_score - row_best, 0.0)
        return result

    @tf.function(input_signature=[_QUESTION, _CONTEXT])
    def serve(self, question, context):
        tf.debugging.assert_equal(tf.shape(question), tf.shape(context),
                                  message="question and context must have the same batch size")
        r = self._answer(question, context)
        answered = r["has_span"]
        outputs = {}
        if self.version_2_with_negative:
            impossible = tf.logical_or(r["null_score_diff"] > self.null_score_diff_threshold,
                                       tf.logical_not(answered))
            answered = tf.logical_not(impossible)
            outputs["is_impossible"] = impossible
            outputs["null_score_diff"] = tf.cast(r["null_score_diff"], tf.float32)
        start = tf.where(answered, r["start"], -1)
        end = tf.where(answered, r["end"], -1)
        answer = tf.strings.substr(context, tf.maximum(start, 0),
                                   tf.maximum(end - start, 0), unit="UTF8_CHAR")
        outputs.update(answer=tf.where(answered, answer, ""), start=tf.cast(start, tf.int32),
                       end=tf.cast(end, tf.int32), score=tf.cast(r["score"], tf.float32))
        return outputs

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The SavedModel signatures, by name."""
        return {"serving_default": self.serve.get_concrete_function()}
