"""BERT's optimisers and learning-rate schedule (Google's `optimization.py`) for Keras 3.

Three pieces, re-implemented on Keras 3's optimizer API (TensorFlow backend):

* `WarmupPolynomialDecay`: Google's learning-rate schedule, linear warmup then polynomial decay
  computed on the global step.
* `AdamWeightDecay`: Google's `AdamWeightDecayOptimizer`, i.e. Adam WITHOUT bias correction
  and with the weight decay added to the update, skipped for LayerNorm and bias variables.
* `LAMB`: layer-wise adaptive moments (You et al. 2019) with the BERT exclusions.

`create_optimizer(...)` builds the schedule and one of the optimisers the way Google's
`optimization.create_optimizer` does, with global-norm clipping at 1.0.

Gradient clipping (`global_clipnorm`) and tf.distribute
----------------------------------------------------------
Google's `optimization.py` computes `grads = tf.gradients(loss, tvars)`, clips them with
`tf.clip_by_global_norm(grads, 1.0)` and only then calls `optimizer.apply_gradients`. On TPU
the optimiser is wrapped in `CrossShardOptimizer`, whose `apply_gradients` SUMS the gradients
over the shards (`cross_replica_sum`); its loss rescaling lives in `compute_gradients`, which
BERT bypasses. So on TPU every replica clips its OWN gradient to global norm 1.0 and the clipped
gradients are then summed.

Keras 3 (TensorFlow backend) does the same with `global_clipnorm` when `apply_gradients` runs in
a replica context (`strategy.run`): `_backend_apply_gradients` clips the per-replica gradients,
then `_backend_update_step` all-reduces them with SUM and applies the update once per variable.
Our optimisers keep that order by default (`clip_after_all_reduce=False`), which is Google's TPU
behaviour. With one replica (one device, or no strategy) clipping before or after the (identity)
all-reduce is the same thing, and equals Google's single-device behaviour.

With `clip_after_all_reduce=True` the gradients are summed over the replicas first and the SUM
is clipped: if the training loop scales each replica's loss by 1/num_replicas (the TF2
convention, `tf.nn.compute_average_loss` with the global batch size), the summed gradient is the
gradient of the global-batch mean loss and the step is exactly what one device would do on the
global batch, whatever the number of replicas. Without clipping (or while the norm stays below
the threshold) both modes give the same result.

Clipping is `tf.clip_by_global_norm` (Google's op). Gradients that are `tf.IndexedSlices`
(embedding look-ups) are made dense first, so the global norm is the norm of the true gradient
(rows of repeated token ids summed), as on TPU where Google's embeddings are one-hot matmuls
with dense gradients; `tf.clip_by_global_norm` on raw IndexedSlices would count every repeated
row separately. The moment updates are dense anyway, as in Google's optimiser.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from bert_tf.errors import InputError

# Google's `exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]`, searched with
# `re.search` in the variable's path (e.g. "layer_0/self_attention_layer_norm/gamma",
# "masked_lm/output_bias").
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")

OPTIMIZER_TYPES = ("adamw", "lamb")

__all__ = ["AdamWeightDecay", "DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY", "LAMB", "OPTIMIZER_TYPES",
           "WarmupPolynomialDecay", "create_optimizer", "variable_path"]


def variable_path(variable) -> str:
    """The name the exclusion patterns are matched against.

    Keras 3 variables: `variable.path` ("layer_0/self_attention_layer_norm/gamma"); their
    `name` is only the last component ("gamma") and would not match "layer_norm". Plain
    `tf.Variable`s: `name` without the ":0" suffix, as Google's `_get_variable_name`.
    """
    path = getattr(variable, "path", None)
    if not isinstance(path, str) or not path:
        path = str(variable.name)
    m = re.match(r"^(.*):\d+$", path)
    return m.group(1) if m else path


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


@keras.saving.register_keras_serializable(package="bert_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Google BERT's learning rate: linear warmup, then polynomial decay on the global step.

    For step `t` (the optimiser's iteration count before the update, as Google's `global_step`):

        decayed(t) = (init_lr - end_lr) * (1 - min(t, num_train_steps) / num_train_steps)**power
                     + end_lr
        warmup(t)  = init_lr * t / num_warmup_steps
        lr(t)      = warmup(t) if t < num_warmup_steps else decayed(t)

    The decay is NOT re-based after the warmup: at the end of the warmup the rate is
    `decayed(num_warmup_steps)`, slightly below `init_lr`, exactly as Google composes
    `tf.train.polynomial_decay` with its warmup. The first step (t = 0) has rate 0 when there is
    a warmup. After `num_train_steps` the rate stays at `end_lr`. Computed in float32.

    Example:
        >>> s = WarmupPolynomialDecay(1e-4, num_train_steps=100, num_warmup_steps=10)
        >>> [round(float(s(t)), 8) for t in (0, 5, 10, 55, 100, 200)]
        [0.0, 5e-05, 9e-05, 4.5e-05, 0.0, 0.0]
    """

    def __init__(self, init_lr: float, num_train_steps: int, num_warmup_steps: int = 0,
                 end_lr: float = 0.0, power: float = 1.0, name: str | None = None):
        _check_schedule_args(init_lr, num_train_steps, num_warmup_steps, end_lr, power)
        self.init_lr = float(init_lr)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)
        self.end_lr = float(end_lr)
        self.power = float(power)
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name or "WarmupPolynomialDecay"):
            step = tf.cast(step, tf.int64)
            # tf.compat.v1.train.polynomial_decay(init_lr, step, num_train_steps, end_lr, power)
            decay_steps = tf.constant(float(self.num_train_steps), tf.float32)
            p = tf.minimum(tf.cast(step, tf.float32), decay_steps) / decay_steps
            decayed = ((self.init_lr - self.end_lr) * tf.pow(1.0 - p, self.power)
                       + self.end_lr)
            if not self.num_warmup_steps:
                return decayed
            warmup_steps = tf.constant(self.num_warmup_steps, tf.int64)
            warmup = self.init_lr * (tf.cast(step, tf.float32)
                                     / tf.cast(warmup_steps, tf.float32))
            is_warmup = tf.cast(step < warmup_steps, tf.float32)
            # Google's blend; multiplying by exactly 0 or 1 selects one of the two.
            return (1.0 - is_warmup) * decayed + is_warmup * warmup

    def get_config(self):
        return {"init_lr": self.init_lr, "num_train_steps": self.num_train_steps,
                "num_warmup_steps": self.num_warmup_steps, "end_lr": self.end_lr,
                "power": self.power, "name": self.name}


def _check_schedule_args(init_lr, num_train_steps, num_warmup_steps, end_lr, power):
    if not _is_real(init_lr) or init_lr <= 0:
        raise InputError(f"init_lr must be a positive finite number, got {init_lr!r}")
    if not _is_int(num_train_steps) or num_train_steps <= 0:
        raise InputError(f"num_train_steps must be a positive integer, got {num_train_steps!r}")
    if not _is_int(num_warmup_steps) or num_warmup_steps < 0:
        raise InputError(f"num_warmup_steps must be a non-negative integer, "
                         f"got {num_warmup_steps!r}")
    if num_warmup_steps > num_train_steps:
        raise InputError(f"num_warmup_steps ({num_warmup_steps}) must not exceed "
                         f"num_train_steps ({num_train_steps})")
    if not _is_real(end_lr) or end_lr < 0:
        raise InputError(f"end_lr must be a non-negative finite number, got {end_lr!r}")
    if end_lr > init_lr:
        raise InputError(f"end_lr ({end_lr}) must not exceed init_lr ({init_lr})")
    if not _is_real(power) or power <= 0:
        raise InputError(f"power must be a positive finite number, got {power!r}")


class _BertOptimizer(keras.optimizers.Optimizer):
    """Shared parts: exclusion patterns, decisions per variable, clipping, config."""

    def __init__(self, learning_rate, *, beta_1: float, beta_2: float, epsilon: float,
                 weight_decay_rate: float,
                 exclude_from_weight_decay: Sequence[str] | None,
                 clip_after_all_reduce: bool, name: str | None, **kwargs):
        if kwargs.get("weight_decay") is not None:
            raise InputError(f"{type(self).__name__} takes `weight_decay_rate` (applied inside "
                             "the update, skipping the excluded variables), not Keras' "
                             "`weight_decay`")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        for arg, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise InputError(f"{arg} must be in [0, 1), got {value!r}")
        if not _is_real(epsilon) or epsilon < 0:
            raise InputError(f"epsilon must be a non-negative number, got {epsilon!r}")
        if not _is_real(weight_decay_rate) or weight_decay_rate < 0:
            raise InputError(f"weight_decay_rate must be a non-negative number, "
                             f"got {weight_decay_rate!r}")
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.weight_decay_rate = float(weight_decay_rate)
        self.exclude_from_weight_decay = _patterns(exclude_from_weight_decay,
                                                   "exclude_from_weight_decay")
        self.clip_after_all_reduce = bool(clip_after_all_reduce)

    # -- which variables are decayed -------------------------------------------------------

    def use_weight_decay(self, variable) -> bool:
        """Google's `_do_use_weight_decay`: off when the rate is 0 or a pattern matches."""
        if not self.weight_decay_rate:
            return False
        return not _matches(variable_path(variable), self.exclude_from_weight_decay)

    def _create_slots(self, var_list, names):
        """Creates the slots and records each variable's decisions, by variable index.

        Decisions are taken here, on the Keras variables: inside `update_step` under a
        tf.distribute strategy the variable is a per-device `tf.Variable` whose name is not
        the Keras path.
        """
        self._decay_flags = tuple(self.use_weight_decay(v) for v in var_list)
        return self.add_optimizer_variables(var_list, names)

    def _slot_index(self, variable) -> int:
        return self._get_variable_index(variable)

    def build(self, var_list):
        """Both optimizers keep Adam's moments, slots "m" and "v"."""
        if self.built:
            return
        super().build(var_list)
        self._m, self._v = self._create_slots(var_list, ["m", "v"])

    def _step_inputs(self, gradient, variable, learning_rate):
        """(dtype, dense gradient, learning rate, variable index) for `update_step`."""
        dtype = variable.dtype
        return (dtype, self._dense(gradient, dtype), tf.cast(learning_rate, dtype),
                self._slot_index(variable))

    # -- clipping --------------------------------------------------------------------------

    def _clip_by_global_norm(self, grads):
        grads = list(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        if not present:
            return grads
        # Dense first: for IndexedSlices with repeated indices (a token seen twice in the batch)
        # tf.clip_by_global_norm would count each repetition separately instead of their sum.
        dense = [tf.convert_to_tensor(grads[i]) if isinstance(grads[i], tf.IndexedSlices)
                 else grads[i] for i in present]
        clipped, _ = tf.clip_by_global_norm(dense, self.global_clipnorm)
        for i, g in zip(present, clipped):
            grads[i] = g
        return grads

    def _clip_gradients(self, grads):
        # Called per replica, before Keras all-reduces the gradients.
        if self.global_clipnorm and self.global_clipnorm > 0:
            if self.clip_after_all_reduce:
                return list(grads)  # clipped in _backend_update_step, after the all-reduce
            return self._clip_by_global_norm(grads)
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not (self.clip_after_all_reduce and self.global_clipnorm
                and self.global_clipnorm > 0):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        # Same as Keras' TF backend, with the clip between the all-reduce and the update.
        tvars = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, tvars)))
        clipped = self._clip_by_global_norm([g for g, _ in grads_and_vars])
        grads_and_vars = [(g, v) for g, (_, v) in zip(clipped, grads_and_vars)]
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step, self._distribution_strategy, grads_and_vars,
            learning_rate)

    # -- helpers for update_step -----------------------------------------------------------

    @staticmethod
    def _dense(gradient, dtype):
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        return tf.cast(gradient, dtype)

    @staticmethod
    def _value(variable):
        return variable.value if isinstance(variable, keras.Variable) else variable

    def _moments(self, gradient, variable):
        """m, v updated in place; returns their new values (Adam moments, no bias correction)."""
        idx = self._slot_index(variable)
        m, v = self._m[idx], self._v[idx]
        next_m = self.beta_1 * self._value(m) + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * self._value(v) + (1.0 - self.beta_2) * tf.square(gradient)
        self.assign(m, next_m)
        self.assign(v, next_v)
        return next_m, next_v

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update({
            "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
            "weight_decay_rate": self.weight_decay_rate,
            "exclude_from_weight_decay": (None if self.exclude_from_weight_decay is None
                                          else list(self.exclude_from_weight_decay)),
            "clip_after_all_reduce": self.clip_after_all_reduce,
        })
        return config


def _patterns(patterns, arg):
    if patterns is None:
        return None
    if isinstance(patterns, str):
        raise InputError(f"{arg} must be a list of regular expressions, not a string")
    patterns = tuple(patterns)
    for p in patterns:
        if not isinstance(p, str):
            raise InputError(f"{arg} must contain strings, got {p!r}")
        re.compile(p)
    return patterns


def _matches(name: str, patterns: Iterable[str] | None) -> bool:
    return bool(patterns) and any(re.search(p, name) is not None for p in patterns)


def _fused_adam_scales(beta_1: float, beta_2: float, dtype: tf.DType) -> tuple[float, float]:
    """(lr, epsilon) factors that make TensorFlow's fused Adam kernel compute Google's update.

    Google multiplies the gradient terms by `1 - beta` rounded to the variable's dtype; the
    kernel uses `1 - round(beta)` (m += (g - m) * (1 - beta_1)), which for beta_2 = 0.999 in
    float32 is 1.3e-5 smaller. Both moment recurrences are linear with the same decay, so the
    kernel's moments are constant multiples r1 * m and r2 * v of Google's, and
        lr * r1 * m / (sqrt(r2 * v) + eps)  equals Google's  lr * m / (sqrt(v) + eps)
    when the kernel gets lr * sqrt(r2) / r1 and eps * sqrt(r2).
    """
    np_dtype = np.dtype(dtype.as_numpy_dtype)

    def ratio(beta):
        kernel = float(np_dtype.type(1) - np_dtype.type(beta))
        return kernel / float(np_dtype.type(1.0 - beta))

    r1, r2 = ratio(beta_1), ratio(beta_2)
    return math.sqrt(r2) / r1, math.sqrt(r2)


@keras.saving.register_keras_serializable(package="bert_tf")
class AdamWeightDecay(_BertOptimizer):
    """Google BERT's `AdamWeightDecayOptimizer` on Keras 3.

    For each variable `w` with gradient `g` (float32 arithmetic, `lr` from the schedule):

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        update = m / (sqrt(v) + epsilon)                # NO bias correction
        if w is not excluded: update += weight_decay_rate * w
        w = w - lr * update

    A variable is excluded from weight decay when any of `exclude_from_weight_decay` (regular
    expressions, default `["LayerNorm", "layer_norm", "bias"]`) is found by `re.search` in its
    Keras path (`variable.path`, e.g. "layer_0/self_attention_layer_norm/gamma",
    "masked_lm/output_bias"); for a plain `tf.Variable`, in its name without ":0".

    Why not `keras.optimizers.AdamW`: Keras' AdamW is bias-corrected Adam (the step is
    `lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)`, so the first steps
    are much larger than Google's, whose moments start at 0 without correction, and epsilon
    acts at a different scale); it applies the decay as a separate `w -= lr * wd * w` before the
    Adam step; and its `exclude_from_weight_decay(var_names=...)` matches `variable.name`, which
    in Keras 3 is only "gamma"/"beta"/"kernel", so "layer_norm" never matches a LayerNorm gamma.
    Checkpoints trained with Google's optimiser (and fine-tuning recipes tuned for it) expect the
    update above.

    Implementation: the decay as one multiply of the variable, then TensorFlow's fused Adam
    kernel (`ResourceApplyAdam`) with bias correction switched off and its lr/epsilon rescaled
    so its moments' rounding of `1 - beta` matches Google's (`_fused_adam_scales`): two passes
    over each variable instead of about ten (a [30522, 512] table: 234 → 78 ms on the 2-core
    CPU), equal to the formula above to float32 rounding (tests/test_optimization.py, 1e-6).

    Gradient clipping: `global_clipnorm` clips by global norm before the update (per replica
    under tf.distribute unless `clip_after_all_reduce=True`; see the module docstring).
    Works with `tf.distribute` (`strategy.run` calling `apply_gradients`), mixed precision
    (float32 variables; wrap in `keras.optimizers.LossScaleOptimizer` for float16), XLA
    (`jit_compile=True`) and `tf.train.Checkpoint(optimizer=...)` (slots "m"/"v" per variable).

    Example:
        >>> import keras
        >>> opt = AdamWeightDecay(learning_rate=1e-4, global_clipnorm=1.0)
        >>> w = keras.Variable([[1.0, 2.0]], name="kernel")
        >>> _ = opt.apply_gradients([(keras.ops.ones((1, 2)), w)])
        >>> [round(x, 6) for x in w.numpy()[0].tolist()]
        [0.999683, 1.999682]
    """

    def __init__(self, learning_rate=1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-6, weight_decay_rate: float = 0.01,
                 exclude_from_weight_decay: Sequence[str] | None = (
                     DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY),
                 clip_after_all_reduce: bool = False, name: str | None = None, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay_rate=weight_decay_rate,
                         exclude_from_weight_decay=exclude_from_weight_decay,
                         clip_after_all_reduce=clip_after_all_reduce,
                         name=name or "AdamWeightDecay", **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        # Written as two fused kernels instead of ~10 elementwise passes over the variable (the
        # update was 41% of a BERT training step): Google's step
        #     w - lr * (m / (sqrt(v) + eps) + wd * w)  ==  w * (1 - lr * wd) - lr * m / (...)
        # is the decoupled decay (one multiply, on the old w) followed by TensorFlow's fused
        # Adam kernel with beta1_power = beta2_power = 0, where its bias-correction factor
        # sqrt(1 - beta2_power) / (1 - beta1_power) is exactly 1: Google's update, uncorrected.
        dtype, gradient, lr, idx = self._step_inputs(gradient, variable, learning_rate)
        w = self._value(variable)
        if self._decay_flags[idx] and self.weight_decay_rate:
            w.assign(w * (1.0 - lr * self.weight_decay_rate))
        lr_scale, eps_scale = _fused_adam_scales(self.beta_1, self.beta_2, dtype)
        zero = tf.zeros([], dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=w.handle, m=self._value(self._m[idx]).handle,
            v=self._value(self._v[idx]).handle, beta1_power=zero, beta2_power=zero,
            lr=lr * lr_scale, beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon * eps_scale, dtype),
            grad=gradient, use_locking=False)


@keras.saving.register_keras_serializable(package="bert_tf")
class LAMB(_BertOptimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning") for BERT.

    For each variable `w` with gradient `g`, at step `t` = iterations + 1:

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat = m / (1 - beta_1**t),  v_hat = v / (1 - beta_2**t)     # bias_correction=True
        r = m_hat / (sqrt(v_hat) + epsilon)
        if w is not excluded from weight decay: r += weight_decay_rate * w
        ratio = ||w|| / ||r||  if ||w|| > 0 and ||r|| > 0  else 1    # layer-wise trust ratio
        if w is excluded from layer adaptation: ratio = 1
        w = w - lr * ratio * r

    Norms are Frobenius norms over the whole variable. `exclude_from_layer_adaptation`
    defaults to `exclude_from_weight_decay` (LayerNorm and bias variables get neither decay nor
    trust ratio), as in the BERT LAMB of TF-Addons / TF Model Garden / NVIDIA. With
    `bias_correction=False` the moments are used uncorrected (as Google's AdamWeightDecay, and
    some BERT LAMB ports).

    Why not `keras.optimizers.Lamb`: it has no weight decay inside the update (Keras applies
    `weight_decay` separately, before the step and outside the trust ratio), no exclusion from
    layer adaptation (every LayerNorm gamma/beta and bias gets a trust ratio), matches
    exclusion names against `variable.name` only, and uses epsilon 1e-7.

    Clipping and tf.distribute / mixed precision / XLA / checkpoints: as `AdamWeightDecay`.
    """

    def __init__(self, learning_rate=1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-6, weight_decay_rate: float = 0.01,
                 exclude_from_weight_decay: Sequence[str] | None = (
                     DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY),
                 exclude_from_layer_adaptation: Sequence[str] | None = None,
                 bias_correction: bool = True, clip_after_all_reduce: bool = False,
                 name: str | None = None, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay_rate=weight_decay_rate,
                         exclude_from_weight_decay=exclude_from_weight_decay,
                         clip_after_all_reduce=clip_after_all_reduce,
                         name=name or "LAMB", **kwargs)
        self.exclude_from_layer_adaptation = _patterns(exclude_from_layer_adaptation,
                                                       "exclude_from_layer_adaptation")
        self.bias_correction = bool(bias_correction)

    def use_layer_adaptation(self, variable) -> bool:
        patterns = (self.exclude_from_layer_adaptation
                    if self.exclude_from_layer_adaptation is not None
                    else self.exclude_from_weight_decay)
        return not _matches(variable_path(variable), patterns)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._adapt_flags = tuple(self.use_layer_adaptation(v) for v in var_list)

    def update_step(self, gradient, variable, learning_rate):
        dtype, gradient, lr, idx = self._step_inputs(gradient, variable, learning_rate)
        next_m, next_v = self._moments(gradient, variable)
        if self.bias_correction:
            t = tf.cast(self.iterations + 1, dtype)
            next_m = next_m / (1.0 - tf.pow(tf.constant(self.beta_1, dtype), t))
            next_v = next_v / (1.0 - tf.pow(tf.constant(self.beta_2, dtype), t))
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        w = self._value(variable)
        if self._decay_flags[idx]:
            update += self.weight_decay_rate * w
        if self._adapt_flags[idx]:
            w_norm = tf.norm(w)
            r_norm = tf.norm(update)
            ratio = tf.where(w_norm > 0.0,
                             tf.where(r_norm > 0.0, w_norm / r_norm, tf.ones_like(w_norm)),
                             tf.ones_like(w_norm))
            update = ratio * update
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update({
            "exclude_from_layer_adaptation": (None if self.exclude_from_layer_adaptation is None
                                              else list(self.exclude_from_layer_adaptation)),
            "bias_correction": self.bias_correction,
        })
        return config


def create_optimizer(init_lr: float, num_train_steps: int, num_warmup_steps: int,
                     optimizer_type: str = "adamw", weight_decay_rate: float = 0.01,
                     clip_norm: float | None = 1.0, end_lr: float = 0.0,
                     power: float = 1.0) -> keras.optimizers.Optimizer:
    """Google's `optimization.create_optimizer` for Keras 3.

    Learning rate `WarmupPolynomialDecay(init_lr, num_train_steps, num_warmup_steps, end_lr,
    power)`; optimiser `AdamWeightDecay` ("adamw") or `LAMB` ("lamb") with beta_1 0.9,
    beta_2 0.999, epsilon 1e-6, the given weight decay (LayerNorm and bias excluded) and
    gradient clipping to global norm `clip_norm` (None: no clipping), applied per replica
    before the all-reduce like Google on TPU (set `optimizer.clip_after_all_reduce = True`
    before the first step to clip the summed gradient instead; see the module docstring).

    Call `apply_gradients` once per training step: the schedule reads `optimizer.iterations`.
    Under a tf.distribute strategy, create the optimiser inside `strategy.scope()` and call
    `optimizer.build(model.trainable_variables)` there before the first (tf.function) step:
    Keras 3 cannot create the slot variables lazily inside `strategy.run` in a tf.function
    (`keras.optimizers.Adam` fails the same way, "You must feed a value for placeholder").

    Raises:
        ValueError: unknown `optimizer_type`, non-positive `init_lr` / `num_train_steps`,
            negative `num_warmup_steps` or more warmup steps than training steps, negative
            `weight_decay_rate`, non-positive `clip_norm`, bad `end_lr` / `power`.
    """
    if not isinstance(optimizer_type, str) or optimizer_type.lower() not in OPTIMIZER_TYPES:
        raise InputError(f"Unknown optimizer_type {optimizer_type!r}; known: "
                         f"{', '.join(repr(t) for t in OPTIMIZER_TYPES)}")
    _check_schedule_args(init_lr, num_train_steps, num_warmup_steps, end_lr, power)
    if clip_norm is not None and (not _is_real(clip_norm) or clip_norm <= 0):
        raise InputError(f"clip_norm must be a positive number or None, got {clip_norm!r}")
    if not _is_real(weight_decay_rate) or weight_decay_rate < 0:
        raise InputError(f"weight_decay_rate must be a non-negative number, "
                         f"got {weight_decay_rate!r}")
    schedule = WarmupPolynomialDecay(init_lr, num_train_steps, num_warmup_steps,
                                     end_lr=end_lr, power=power)
    cls = {"adamw": AdamWeightDecay, "lamb": LAMB}[optimizer_type.lower()]
    return cls(learning_rate=schedule, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
               weight_decay_rate=weight_decay_rate,
               exclude_from_weight_decay=DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
               global_clipnorm=None if clip_norm is None else float(clip_norm))
