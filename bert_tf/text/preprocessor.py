"""BertPreprocessor: raw strings → BERT encoder inputs, as one Keras layer.

Tokenization (`BertTokenizer`, Google's rules on tf-text's fast ops) and packing
(`[CLS] A [SEP] (B [SEP])`, Google's truncation, padding) run in the TensorFlow graph, so the
layer works in `tf.data.Dataset.map`, inside a `tf.function`, in a SavedModel (TF Serving) and,
with `tflite_compatible=True`, in TFLite. Mirrors the TF Hub BERT preprocessors: calling it packs
one or two text segments; `tokenize` and `bert_pack_inputs` are the two halves.

Example:
    >>> import tensorflow as tf
    >>> from bert_tf.text import BertPreprocessor
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!"]
    >>> pre = BertPreprocessor(vocab, do_lower_case=True, seq_length=6)
    >>> pre(tf.constant(["Hello world!"]))["input_word_ids"].numpy().tolist()
    [[2, 5, 6, 7, 3, 0]]
"""
from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from bert_tf.config import check_seq_length_fits
from bert_tf.errors import InputError
from bert_tf.text.packer import (check_bucket_size, min_seq_length, pack_inputs,
                                 pack_inputs_tflite, trim_to_bucket)
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab, load_vocab


def _vocab_tokens(vocab: Vocab | str | os.PathLike | Sequence[str]) -> list[str]:
    if isinstance(vocab, Vocab):
        return list(vocab.tokens)
    if isinstance(vocab, (str, os.PathLike)):
        return list(load_vocab(vocab).tokens)
    return list(vocab)


_EXPECTS = ("BertPreprocessor expects strings (a tf.string tensor, a list of str, or a NumPy "
            "str/bytes/object array of str)")


def _as_string_tensor(texts) -> tf.Tensor | tf.RaggedTensor:
    """`texts` as a tf.string tensor, or a TypeError naming the dtype received."""
    if isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
        if texts.dtype != tf.string:
            raise TypeError(f"{_EXPECTS}, got dtype {texts.dtype.name} ({type(texts).__name__})")
        return texts
    if isinstance(texts, (list, tuple)) and not texts:
        return tf.constant([], tf.string)  # np.asarray([]) would say float64
    try:
        array = np.asarray(texts)
    except ValueError as e:  # e.g. nested lists of different lengths
        raise TypeError(f"{_EXPECTS}, got a {type(texts).__name__} that is not an array: {e}"
                        ) from None
    if array.dtype.kind not in "USO":
        raise TypeError(f"{_EXPECTS}, got dtype {array.dtype} ({type(texts).__name__})")
    try:
        return tf.convert_to_tensor(array, tf.string)
    except (TypeError, ValueError):  # an object array holding something other than str/bytes
        raise TypeError(f"{_EXPECTS}, got dtype object ({type(texts).__name__}) with items "
                        f"that are not str/bytes") from None


def _is_text_scalar(x) -> bool:
    return isinstance(x, (str, bytes, int, float, np.generic))


def _check_pair_batch_sizes(rows_a, rows_b) -> None:
    if rows_a is not None and rows_b is not None and rows_a != rows_b:
        raise ValueError(f"BertPreprocessor: the two segments of a text pair must have the same "
                         f"batch size, got {rows_a} and {rows_b}")


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPreprocessor(keras.layers.Layer):
    """Strings (or a pair of string tensors) → `input_word_ids`, `input_mask`, `input_type_ids`.

    Args:
        vocab: a vocab.txt path, a `Vocab`, or the token list (id = index). Must contain [PAD],
            [UNK], [CLS], [SEP] and [MASK].
        do_lower_case: True for uncased models.
        seq_length: length of the packed inputs (truncate, then pad).
        tflite_compatible: build only TFLite-convertible ops (see `BertTokenizer`); packing then
            uses dense tensor ops.
        max_position_embeddings: if given (the model's), `seq_length` may not exceed it.
        bucket_size: None (default) packs every batch to `seq_length`. An int packs each batch
            to its longest row rounded up to a multiple of `bucket_size`, capped at `seq_length`
            (`bert_tf.text.packer.trim_to_bucket`): only padding columns are dropped, so a
            model's outputs on the real tokens are unchanged. Not with `tflite_compatible`
            (TFLite graphs are fixed-shape).

    Call: `pre(texts)` with a string tensor [B] (or a list of str, or a NumPy str/bytes array),
    or `pre((texts_a, texts_b))` for pairs. Returns a dict of int32 [B, seq_length] tensors
    ([B, L], L <= seq_length, with `bucket_size`).

    Edge cases:
        - An empty batch (`tf.constant([], tf.string)`, `[]`) gives [0, seq_length] outputs
          ([0, min(bucket_size, seq_length)] with `bucket_size`).
        - An empty or whitespace-only text has no pieces: alone it packs as `[CLS] [SEP]` then
          padding; a pair of them as `[CLS] [SEP] [SEP]` then padding.
        - Texts longer than `seq_length` are truncated with Google's rule (a single text keeps its
          first seq_length - 2 pieces; pairs see `bert_tf.text.packer`), never an error: the
          row then ends with [SEP] and its mask is all ones.
        - Invalid UTF-8 bytes are dropped, as Google's `decode("utf-8", "ignore")` does.
        - Non-string inputs (int/float tensors or arrays, lists of numbers) raise a `TypeError`
          naming the dtype received; a single string (a scalar, not a batch) a `ValueError`.
        - The two segments of a pair must have the same batch size: a `ValueError` when the
          sizes are known (always eagerly), else a runtime `InvalidArgumentError` (in a
          `tf.function` with unknown batch sizes; TFLite drops that check).
    """

    def __init__(self, vocab: Vocab | str | os.PathLike | Sequence[str], do_lower_case: bool = True,
                 seq_length: int = 128, tflite_compatible: bool = False,
                 max_position_embeddings: int | None = None, bucket_size: int | None = None,
                 **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if isinstance(seq_length, bool) or not isinstance(seq_length, int):
            raise TypeError(f"seq_length must be an int, got {seq_length!r}")
        if seq_length < min_seq_length(1):
            raise InputError(f"seq_length must be at least {min_seq_length(1)} ([CLS] and [SEP]), "
                             f"got {seq_length}")
        if max_position_embeddings is not None:
            check_seq_length_fits(seq_length, max_position_embeddings, "seq_length")
        self.bucket_size = check_bucket_size(bucket_size)
        if self.bucket_size is not None and tflite_compatible:
            raise InputError("bucket_size needs tflite_compatible=False: a TFLite graph has a "
                             "fixed seq_length")
        self.vocab_tokens = _vocab_tokens(vocab)
        self.do_lower_case = bool(do_lower_case)
        self.seq_length = seq_length
        self.tflite_compatible = bool(tflite_compatible)
        self.max_position_embeddings = max_position_embeddings
        # Validates the special tokens with a clear VocabError.
        self.vocab = Vocab(self.vocab_tokens, path=vocab if isinstance(vocab, (str, os.PathLike))
                           else getattr(vocab, "path", None))
        for token_id in ("cls_id", "sep_id", "pad_id", "mask_id", "unk_id"):
            getattr(self.vocab, token_id)
        self.tokenizer = BertTokenizer(self.vocab, do_lower_case=self.do_lower_case,
                                       tflite_compatible=self.tflite_compatible)
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        # Texts become string tensors before Keras sees them: Keras's own conversion would cast a
        # float64 array to float32 (so the TypeError would name the wrong dtype), and it rejects
        # Python lists of str and pairs mixing a tensor with a list or an array.
        if not isinstance(inputs, dict):
            segments = [s if isinstance(s, keras.KerasTensor) else _as_string_tensor(s)
                        for s in self._segments(inputs)]
            inputs = segments[0] if len(segments) == 1 else tuple(segments)
        return super().__call__(inputs, *args, **kwargs)

    def tokenize(self, strings) -> tf.RaggedTensor:
        """WordPiece ids (int32) of a [B] string tensor: a RaggedTensor [B, (pieces)]."""
        return self.tokenizer.tokenize(strings)

    def bert_pack_inputs(self, segments: Sequence[tf.RaggedTensor], seq_length: int | None = None
                         ) -> dict[str, tf.Tensor]:
        """Packs one or two tokenized segments into the encoder's three inputs (int32
        [B, seq_length], or [B, bucket length] with `bucket_size`; see the class docstring)."""
        segments = list(segments)
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"bert_pack_inputs takes one or two segments, got {len(segments)}")
        pack = functools.partial(
            pack_inputs_tflite if self.tflite_compatible else pack_inputs,
            seq_length=seq_length or self.seq_length, cls_id=self.vocab.cls_id,
            sep_id=self.vocab.sep_id, pad_id=self.vocab.pad_id)
        if len(segments) == 2 and all(isinstance(s, tf.RaggedTensor) for s in segments):
            rows = [s.shape[0] for s in segments]
            _check_pair_batch_sizes(*rows)
            if None in rows:
                # Unknown sizes (a tf.function): check at run time, before packing, because
                # tf-text's ops read out of bounds on segments of different batch sizes (garbage
                # ids, or the process aborts) and the dense path silently broadcasts a batch of 1.
                # (The TFLite converter drops this assertion; the graph still converts.)
                check = tf.debugging.assert_equal(
                    segments[0].nrows(), segments[1].nrows(),
                    message="BertPreprocessor: the two segments of a text pair must have the "
                            "same batch size")
                with tf.control_dependencies([check]):
                    return trim_to_bucket(pack(*segments), self.bucket_size)
        return trim_to_bucket(pack(*segments), self.bucket_size)

    def call(self, inputs) -> dict[str, tf.Tensor]:
        if isinstance(inputs, dict):
            raise TypeError("BertPreprocessor takes a string tensor or a (texts_a, texts_b) pair, "
                            f"not a dict (got keys {sorted(inputs)})")
        texts = [_as_string_tensor(s) for s in self._segments(inputs)]
        if any(t.shape.rank == 0 for t in texts):
            raise ValueError("BertPreprocessor expects a batch of texts (shape [B]), got a single "
                             "string; pass [text]")
        return self.bert_pack_inputs([self.tokenize(t) for t in texts])

    @staticmethod
    def _segments(inputs) -> list:
        # A list/tuple of Python (or NumPy) scalars is one batch of texts; otherwise a list/tuple
        # holds the segments of a pair.
        if isinstance(inputs, (list, tuple)) and not all(_is_text_scalar(x) for x in inputs):
            segments = list(inputs)
            if not 1 <= len(segments) <= 2:
                raise ValueError(f"BertPreprocessor takes one or two text segments, got "
                                 f"{len(segments)}")
            return segments
        return [inputs]

    def compute_output_spec(self, inputs):
        segments = self._segments(inputs)
        for segment in segments:
            dtype = keras.backend.standardize_dtype(segment.dtype)
            if dtype != "string":
                raise TypeError(f"{_EXPECTS}, got dtype {dtype} (a Keras input)")
        if len(segments) == 2:
            _check_pair_batch_sizes(segments[0].shape[0], segments[1].shape[0])
        shape = (segments[0].shape[0], None if self.bucket_size else self.seq_length)
        return {name: keras.KerasTensor(shape, dtype="int32")
                for name in ("input_word_ids", "input_mask", "input_type_ids")}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(vocab=self.vocab_tokens, do_lower_case=self.do_lower_case,
                      seq_length=self.seq_length, tflite_compatible=self.tflite_compatible,
                      max_position_embeddings=self.max_position_embeddings,
                      bucket_size=self.bucket_size)
        return config
