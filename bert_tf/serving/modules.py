"""Serving modules: a trained model + the in-graph preprocessor as `tf.Module`s with string signatures.

Each module's signatures take raw strings (tokenization and packing run inside the graph) and
return plain tensors, so the SavedModel serves from TF Serving, `saved_model_cli`, or
`tf.saved_model.load` in Python with no client-side tokenizer:

- `ClassifierServingModule`: `serving_default(text)` and `text_pair(text, text_b)` →
  `probabilities`, `logits` (float32 [B, C]) and `label` (string [B], the training labels);
  a regression model (one output) returns `score` (float32 [B]) instead; a multi-label model
  returns every label's sigmoid `probabilities` [B, C], `logits`, `predicted` (bool [B, C],
  probability > threshold) and `label` (string [B], the predicted labels joined by the separator).
- `EncoderServingModule` (TF Hub's encoder conventions): `serving_default(text)` and
  `text_pair(text, text_b)` → `pooled_output` [B, H], `sequence_output` [B, S, H],
  `encoder_outputs` [B, L, S, H] (the L blocks' outputs stacked on axis 1, because a signature
  returns tensors, not lists); `encode(input_word_ids, input_mask, input_type_ids)` takes
  already-packed int32 [B, S] inputs.
- `EmbeddingServingModule`: `serving_default(text)` (and `text_pair`) → `embedding` [B, D], a
  `SentenceEmbedder`'s sentence vector.
- `MaskedLMServingModule` (fill-mask): `serving_default(text)` (and `text_pair`) where the text
  contains one or more literal `[MASK]` → per mask position the `top_k` tokens and their probabilities.

Sequence length follows the data: with a preprocessor whose `bucket_size` is set (what
`ExportSpec` builds by default), each request batch is packed to its longest text rounded up to
a multiple of `bucket_size` (capped at `seq_length`), so a 20-token sentence is not computed at
128. Outputs equal the fixed-length computation: the dropped columns are padding, which
attention masks out. Per-token outputs (the encoder's `sequence_output`, `encoder_outputs`) are
zero-padded back to `seq_length` (`ServingModule.pad_to_seq_length`), so their shape does not
depend on the batch; positions past a text's `[SEP]` are padding (as at fixed length: not
meaningful), zeros past the batch's bucket.

Texts longer than the preprocessor's `seq_length` are truncated (Google's rule), never refused;
an empty batch returns empty outputs; an empty string is `[CLS] [SEP]`.

The modules track the Keras variables' underlying `tf.Variable`s (`tf_vars`): without that, the
C++ SavedModel loader (TF Serving, `saved_model_cli run`) cannot find them.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from bert_tf.errors import InputError
from bert_tf.text.preprocessor import BertPreprocessor

MASK_TOKEN = "[MASK]"
_TEXT = tf.TensorSpec([None], tf.string, name="text")
_TEXT_B = tf.TensorSpec([None], tf.string, name="text_b")
_IDS = tf.TensorSpec([None, None], tf.int32)


class _Untracked:
    """A plain holder: tf.Module does not walk into it when saving."""

    def __init__(self, model, preprocessor):
        self.model, self.preprocessor = model, preprocessor


class ServingModule(tf.Module):
    """Base: holds the Keras model and the preprocessor; subclasses define `_outputs`."""

    task: str = ""

    def __init__(self, model, preprocessor: BertPreprocessor, name: str | None = None):
        super().__init__(name=name)
        # The Keras objects are kept out of the SavedModel's object graph (saving them adds ~10 s
        # per export and nothing a server uses); what the graph needs is tracked explicitly:
        # the raw tf.Variables, without which the C++ loader fails (docs/architecture.md#serving-contract).
        self._untracked = _Untracked(model, preprocessor)
        self.tf_vars = [v.value for v in model.variables]

    @property
    def model(self):
        return self._untracked.model

    @property
    def preprocessor(self) -> BertPreprocessor:
        return self._untracked.preprocessor

    def _tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.preprocessor.tokenize(text)

    def pad_to_seq_length(self, x: tf.Tensor, axis: int = 1) -> tf.Tensor:
        """`x` with its length axis (`axis`, of size L <= seq_length) zero-padded to the
        preprocessor's `seq_length`: per-token outputs keep one shape whatever the bucket."""
        seq_length = self.preprocessor.seq_length
        if x.shape[axis] == seq_length:
            return x
        paddings = [[0, 0]] * x.shape.rank
        paddings[axis] = [0, seq_length - tf.shape(x)[axis]]
        padded = tf.pad(x, paddings)
        shape = x.shape.as_list()
        shape[axis] = seq_length
        padded.set_shape(shape)
        return padded

    def _outputs(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The signature's outputs from packed encoder inputs."""
        raise NotImplementedError

    @tf.function(input_signature=[_TEXT])
    def serve_text(self, text):
        return self._outputs(self.preprocessor.bert_pack_inputs([self._tokenize(text)]))

    @tf.function(input_signature=[_TEXT, _TEXT_B])
    def serve_text_pair(self, text, text_b):
        tf.debugging.assert_equal(tf.shape(text), tf.shape(text_b),
                                  message="text and text_b must have the same batch size")
        return self._outputs(self.preprocessor.bert_pack_inputs(
            [self._tokenize(text), self._tokenize(text_b)]))

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The SavedModel signatures, by name (`serving_default` first)."""
        return {"serving_default": self.serve_text.get_concrete_function(),
                "text_pair": self.serve_text_pair.get_concrete_function()}


class ClassifierServingModule(ServingModule):
    """A `BertClassifier` behind string signatures; see the module docstring.

    Args:
        classifier: a `BertClassifier` (num_classes = len(labels), or 1 for regression).
        preprocessor: the `BertPreprocessor` used in training (same vocab, casing, seq_length).
        labels: the label names in id order (classification); None or empty for regression.
        multi_label: independent sigmoid outputs, labels above `threshold` joined by
          `label_separator` (see the module docstring).
    """

    task = "classifier"

    def __init__(self, classifier, preprocessor: BertPreprocessor,
                 labels: Sequence[str] | None = None, name: str | None = None,
                 multi_label: bool = False, threshold: float = 0.5,
                 label_separator: str = ","):
        super().__init__(classifier, preprocessor, name=name)
        self.multi_label, self.threshold = bool(multi_label), float(threshold)
        self.label_separator = label_separator
        labels = [str(x) for x in (labels or [])]
        self.is_regression = not labels
        if self.is_regression and classifier.num_classes != 1:
            raise InputError(f"the classifier has {classifier.num_classes} classes: give their "
                             "label names (a regression model has one output)")
        if labels and len(labels) != classifier.num_classes:
            raise InputError(f"{len(labels)} labels {labels} for a classifier with "
                             f"{classifier.num_classes} outputs")
        self.labels = labels
        self._label_table = tf.constant(labels or [""], tf.string)

    def _outputs(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        if self.is_regression:
            return {"score": logits[:, 0]}
        if self.multi_label:
            probabilities = tf.sigmoid(logits)
            predicted = probabilities > self.threshold
            names = tf.ragged.boolean_mask(
                tf.broadcast_to(self._label_table, tf.shape(logits)), predicted)
            return {"probabilities": probabilities, "logits": logits, "predicted": predicted,
                    "label": tf.strings.reduce_join(names, axis=1,
                                                    separator=self.label_separator)}
        probabilities = tf.nn.softmax(logits, axis=-1)
        label = tf.gather(self._label_table, tf.argmax(logits, axis=-1, output_type=tf.int32))
        return {"probabilities": probabilities, "logits": logits, "label": label}


class EncoderServingModule(ServingModule):
    """A `BertEncoder` behind TF Hub-style signatures; see the module docstring."""

    task = "encoder"

    def _encode(self, inputs):
        out = self.model(inputs, training=False)
        return {"pooled_output": tf.cast(out["pooled_output"], tf.float32),
                "sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "encoder_outputs": tf.cast(tf.stack(out["encoder_outputs"], axis=1), tf.float32)}

    def _outputs(self, inputs):
        out = self._encode(inputs)
        out["sequence_output"] = self.pad_to_seq_length(out["sequence_output"])
        out["encoder_outputs"] = self.pad_to_seq_length(out["encoder_outputs"], axis=2)
        return out

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="input_mask"),
                                  tf.TensorSpec([None, None], tf.int32, name="input_type_ids")])
    def encode(self, input_word_ids, input_mask, input_type_ids):
        # Already-packed inputs keep their own length (no padding to seq_length).
        return self._encode({"input_word_ids": input_word_ids, "input_mask": input_mask,
                             "input_type_ids": input_type_ids})

    def signatures(self):
        out = super().signatures()
        out["encode"] = self.encode.get_concrete_function()
        return out


class MaskedLMServingModule(ServingModule):
    """Fill-mask with a `BertPretrainer`'s masked-LM head (tied to the word embeddings).

    `serving_default(text)` (and `text_pair(text, text_b)`) → for each text, M = the batch's
    largest number of `[MASK]`s kept after truncation: `masked_lm_positions` int32 [B, M], `top_k_ids` int32 [B, M, k],
    `top_k_tokens` string [B, M, k], `top_k_scores` float32 [B, M, k] (softmax probabilities,
    best first). Rows with fewer masks are padded with position -1, id -1, token "" and score 0.
    `[MASK]` is matched literally (upper case) before tokenization, so it survives lower-casing
    and punctuation splitting, as a masked token does in pretraining.
    """

    task = "masked_lm"

    def __init__(self, pretrainer, preprocessor: BertPreprocessor, top_k: int = 5,
                 name: str | None = None):
        super().__init__(pretrainer, preprocessor, name=name)
        vocab = preprocessor.vocab
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive int, got {top_k!r}")
        self.top_k = min(top_k, pretrainer.config.vocab_size)
        self._mask_id = vocab.mask_id
        # Ids the vocab file does not cover (a vocab_size padded beyond it) read as "".
        tokens = list(vocab.tokens)
        tokens += [""] * max(0, pretrainer.config.vocab_size - len(tokens))
        self._vocab_table = tf.constant(tokens, tf.string)

    def _tokenize(self, text):
        """Token ids [B, (T)] with `mask_id` wherever the text had a literal `[MASK]`."""
        parts = tf.strings.split(text, sep=MASK_TOKEN)  # [B, (P)], P = masks + 1
        pieces = self.preprocessor.tokenize(parts.flat_values)  # [N, (T)]
        masks = tf.RaggedTensor.from_tensor(
            tf.fill(tf.stack([pieces.nrows(), 1]), tf.constant(self._mask_id, tf.int32)))
        pieces = tf.concat([pieces, masks], axis=1)  # each part followed by one [MASK]
        per_text = tf.RaggedTensor.from_row_splits(pieces, parts.row_splits).merge_dims(1, 2)
        return per_text[:, :-1]  # the text's last part has no [MASK] after it

    def _outputs(self, inputs):
        word_ids = inputs["input_word_ids"]
        is_mask = tf.equal(word_ids, self._mask_id)
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(tf.range(tf.shape(word_ids)[1]), tf.shape(word_ids)), is_mask)
        valid = tf.ones_like(positions).to_tensor(0) > 0  # [B, M]
        positions = positions.to_tensor(0)
        sequence_output = self.model.encoder(inputs, training=False)["sequence_output"]
        vocab_size = self._vocab_table.shape[0]
        # keras' take_along_axis (inside the head) fails on an empty [B, M]: skip it then.
        logits = tf.cond(
            tf.size(positions) > 0,
            lambda: tf.cast(self.model.masked_lm(sequence_output, mask_positions=positions),
                            tf.float32),
            lambda: tf.zeros(tf.concat([tf.shape(positions), [vocab_size]], 0)))  # [B, M, V]
        scores, ids = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=self.top_k)
        valid_k = tf.broadcast_to(valid[:, :, tf.newaxis], tf.shape(ids))
        return {"masked_lm_positions": tf.where(valid, positions, -1),
                "top_k_ids": tf.where(valid_k, ids, -1),
                "top_k_tokens": tf.where(valid_k, tf.gather(self._vocab_table, ids), ""),
                "top_k_scores": tf.where(valid_k, scores, 0.0)}


class EmbeddingServingModule(ServingModule):
    """A `SentenceEmbedder` behind string signatures: `serving_default(text)` (and `text_pair`)
    → `embedding` float32 [B, D] (pooled as the model was built, L2-normalised if it was)."""

    task = "embedding"

    def _outputs(self, inputs):
        return {"embedding": tf.cast(self.model.embed(inputs, training=False), tf.float32)}


SERVING_MODULES = {cls.task: cls for cls in
                   (ClassifierServingModule, EncoderServingModule, MaskedLMServingModule,
                    EmbeddingServingModule)}
SERVING_TASKS = tuple(SERVING_MODULES)
