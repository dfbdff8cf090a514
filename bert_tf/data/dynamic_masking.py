"""Dynamic (RoBERTa-style) masking in the tf.data pipeline: fresh masks every time a batch is read.

`create_pretraining_data` fixes each instance's masks once (`dupe_factor` copies with different
masks). With dynamic masking a record's static masks are undone (its `masked_lm_ids` go back
into `input_ids`) and every batch is re-masked when it is read, so each epoch sees new masks:

    >>> transform = dynamic_masking_fn(vocab_size=30522, mask_id=103, cls_id=101, sep_id=102,
    ...                                pad_id=0, max_predictions_per_seq=20, seed=1)
    >>> ds = pretraining_dataset(..., batch_transform=transform)      # doctest: +SKIP

Built on tf-text's `RandomItemSelector` (which positions), `MaskValuesChooser` (80% [MASK], 10%
random token, 10% unchanged) and `mask_language_model`. Per row: the selectable tokens are the
real ones (input_mask 1) except [CLS], [SEP] and [PAD]; `ceil(masked_lm_prob * selectable)`
of them are chosen (tf-text's rule; Google's static masking uses
`max(1, round(masked_lm_prob * all tokens))`), at most `max_predictions_per_seq`; positions come
out sorted. Randomness comes from one `tf.random.Generator` (a CPU variable whose state advances
with every batch), so masks differ between passes over the same data, and with a `seed` the
sequence of masks is reproducible when batches are transformed one at a time in order (a
parallel `map` may hand the generator's draws to batches in a different order).
"""
from __future__ import annotations

from typing import Callable, Mapping

import tensorflow as tf
import tensorflow_text as tf_text

from bert_tf.errors import InputError


__all__ = ["dynamic_masking_fn"]


class _GeneratorMaskValuesChooser(tf_text.MaskValuesChooser):
    """tf-text's MaskValuesChooser (same rates and rule) drawing from a tf.random.Generator
    instead of the global stateful RNG, so that a seed makes the masks reproducible."""

    def __init__(self, vocab_size: int, mask_token: int, generator: tf.random.Generator,
                 mask_token_rate: float = 0.8, random_token_rate: float = 0.1) -> None:
        super().__init__(vocab_size, mask_token, mask_token_rate=mask_token_rate,
                         random_token_rate=random_token_rate)
        self._generator = generator

    def get_mask_values(self, masked_lm_ids: tf.RaggedTensor) -> tf.RaggedTensor:
        flat = masked_lm_ids.flat_values
        shape = tf.shape(flat)
        u = self._generator.uniform(shape, dtype=tf.float32)
        random_ids = self._generator.uniform(shape, minval=0, maxval=self.vocab_size,
                                             dtype=tf.int64)
        mask_rate = self._mask_token_rate
        values = tf.where(u < mask_rate, tf.cast(self.mask_token, flat.dtype), flat)
        use_random = (u >= mask_rate) & (u < mask_rate + self.random_token_rate)
        values = tf.where(use_random, tf.cast(random_ids, flat.dtype), values)
        return masked_lm_ids.with_flat_values(values)


_STATIC = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")


def _unmask(input_ids: tf.Tensor, positions: tf.Tensor, labels: tf.Tensor,
            weights: tf.Tensor) -> tf.Tensor:
    """Puts the original tokens of a record's static masks back into input_ids."""
    chosen = tf.where(weights > 0)  # [K, 2]: (row, slot)
    rows = chosen[:, 0]
    cols = tf.cast(tf.gather_nd(positions, chosen), tf.int64)
    values = tf.cast(tf.gather_nd(labels, chosen), input_ids.dtype)
    return tf.tensor_scatter_nd_update(input_ids, tf.stack([rows, cols], axis=1), values)


def dynamic_masking_fn(vocab_size: int, mask_id: int, cls_id: int, sep_id: int, pad_id: int,
                       max_predictions_per_seq: int, masked_lm_prob: float = 0.15,
                       seed: int | None = None
                       ) -> Callable[[Mapping[str, tf.Tensor]], dict[str, tf.Tensor]]:
    """A function re-masking a batch of decoded pretraining features.

    Args:
      vocab_size: random replacement tokens are drawn uniformly from [0, vocab_size).
      mask_id, cls_id, sep_id, pad_id: the vocab ids of [MASK], [CLS], [SEP], [PAD].
      max_predictions_per_seq: M, the width of the masked_lm_* features.
      masked_lm_prob: fraction of the selectable tokens to predict (rounded up per row).
      seed: seeds the generator (None: non-deterministic).
    Returns:
      fn(features) → features, for a batch dict with input_ids, input_mask, segment_ids,
      next_sentence_labels (int32 [B, S], as `records.decode_record` gives). If the batch
      carries a record's static masks (masked_lm_positions, masked_lm_ids and
      masked_lm_weights), their original tokens are first put back into input_ids; then all
      three are replaced by fresh ones: masked_lm_positions / masked_lm_ids int32 [B, M]
      (0-padded), masked_lm_weights float32 [B, M], and input_ids with the chosen positions
      replaced. Other entries pass through.
    """
    if max_predictions_per_seq < 1:
        raise InputError(f"max_predictions_per_seq must be at least 1, got "
                         f"{max_predictions_per_seq}")
    if not 0.0 < masked_lm_prob <= 1.0:
        raise InputError(f"masked_lm_prob must be in (0, 1], got {masked_lm_prob}")
    # A CPU variable: tf.data runs the transform on the host, also next to a GPU/TPU.
    with tf.device("/CPU:0"):
        generator = (tf.random.Generator.from_seed(seed) if seed is not None
                     else tf.random.Generator.from_non_deterministic_state())

    def shuffle(positions: tf.Tensor) -> tf.Tensor:
        keys = generator.uniform(tf.shape(positions), dtype=tf.float32)
        return tf.gather(positions, tf.argsort(keys))

    selector = tf_text.RandomItemSelector(
        max_selections_per_batch=max_predictions_per_seq, selection_rate=masked_lm_prob,
        unselectable_ids=[cls_id, sep_id, pad_id], shuffle_fn=shuffle)
    chooser = _GeneratorMaskValuesChooser(vocab_size, mask_id, generator)
    m = max_predictions_per_seq

    def transform(features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids = tf.convert_to_tensor(features["input_ids"])
        input_mask = tf.convert_to_tensor(features["input_mask"])
        if all(k in features for k in _STATIC):
            input_ids = _unmask(input_ids, *(features[k] for k in _STATIC))
        lengths = tf.reduce_sum(tf.cast(input_mask > 0, tf.int32), axis=1)
        ragged = tf.RaggedTensor.from_tensor(input_ids, lengths=lengths)
        masked, positions, labels = tf_text.mask_language_model(ragged, selector, chooser)
        dense = masked.to_tensor(default_value=0, shape=tf.shape(input_ids))
        out = dict(features)
        # Padding keeps its original values (Google pads input_ids with 0).
        out["input_ids"] = tf.where(input_mask > 0, dense, input_ids)
        batch = tf.shape(input_ids)[0]
        out["masked_lm_positions"] = tf.cast(
            positions.to_tensor(default_value=0, shape=[batch, m]), tf.int32)
        out["masked_lm_ids"] = tf.cast(labels.to_tensor(default_value=0, shape=[batch, m]),
                                       input_ids.dtype)
        out["masked_lm_weights"] = tf.sequence_mask(positions.row_lengths(), m, tf.float32)
        return out

    return transform
