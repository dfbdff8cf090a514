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

import os
from typing import Any, Sequence

import keras
import tensorflow as tf

from bert_tf.text.packer import min_seq_length, pack_inputs, pack_inputs_tflite
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab, load_vocab


def _vocab_tokens(vocab: Vocab | str | os.PathLike | Sequence[str]) -> list[str]:
    if isinstance(vocab, Vocab):
        return list(vocab.tokens)
    if isinstance(vocab, (str, os.PathLike)):
        return list(load_vocab(vocab).tokens)
    return list(vocab)


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

    Call: `pre(texts)` with a string tensor [B], or `pre((texts_a, texts_b))` for pairs. Returns
    a dict of int32 [B, seq_length] tensors.
    """

    def __init__(self, vocab: Vocab | str | os.PathLike | Sequence[str], do_lower_case: bool = True,
                 seq_length: int = 128, tflite_compatible: bool = False,
                 max_position_embeddings: int | None = None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if isinstance(seq_length, bool) or not isinstance(seq_length, int):
            raise TypeError(f"seq_length must be an int, got {seq_length!r}")
        if seq_length < min_seq_length(1):
            raise ValueError(f"seq_length must be at least {min_seq_length(1)} ([CLS] and [SEP]), "
                             f"got {seq_length}")
        if max_position_embeddings is not None and seq_length > max_position_embeddings:
            raise ValueError(f"seq_length {seq_length} exceeds the model's "
                             f"max_position_embeddings ({max_position_embeddings})")
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

    def tokenize(self, strings) -> tf.RaggedTensor:
        """WordPiece ids (int32) of a [B] string tensor: a RaggedTensor [B, (pieces)]."""
        return self.tokenizer.tokenize(strings)

    def bert_pack_inputs(self, segments: Sequence[tf.RaggedTensor], seq_length: int | None = None
                         ) -> dict[str, tf.Tensor]:
        """Packs one or two tokenized segments into the encoder's three inputs."""
        segments = list(segments)
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"bert_pack_inputs takes one or two segments, got {len(segments)}")
        pack = pack_inputs_tflite if self.tflite_compatible else pack_inputs
        return pack(*segments, seq_length=seq_length or self.seq_length,
                    cls_id=self.vocab.cls_id, sep_id=self.vocab.sep_id, pad_id=self.vocab.pad_id)

    def call(self, inputs) -> dict[str, tf.Tensor]:
        if isinstance(inputs, dict):
            raise TypeError("BertPreprocessor takes a string tensor or a (texts_a, texts_b) pair, "
                            f"not a dict (got keys {sorted(inputs)})")
        segments = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"BertPreprocessor takes one or two text segments, got "
                             f"{len(segments)}")
        return self.bert_pack_inputs([self.tokenize(s) for s in segments])

    def compute_output_spec(self, inputs):
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        shape = (first.shape[0], self.seq_length)
        return {name: keras.KerasTensor(shape, dtype="int32")
                for name in ("input_word_ids", "input_mask", "input_type_ids")}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(vocab=self.vocab_tokens, do_lower_case=self.do_lower_case,
                      seq_length=self.seq_length, tflite_compatible=self.tflite_compatible,
                      max_position_embeddings=self.max_position_embeddings)
        return config
