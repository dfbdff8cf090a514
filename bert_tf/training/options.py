"""The Trainer's settings (the training scripts' shared flags, without absl) and its error class."""
from __future__ import annotations

import dataclasses

from bert_tf.errors import InputError

MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


class TrainingError(InputError):
    """A training setup that cannot work (batch sizes, output_dir, options, checkpoints)."""


@dataclasses.dataclass
class TrainerOptions:
    """Settings every task shares.

    Batch sizes are GLOBAL (over all replicas and workers) and must divide evenly by the number
    of replicas in sync. `train_batch_size` is the batch of one forward pass; with
    `gradient_accumulation_steps` k a step (one optimizer update) uses k·train_batch_size
    examples. Step counts (`num_train_steps`, `num_warmup_steps`, `save_checkpoints_steps`,
    `log_steps`, `eval_every_n_steps`) count optimizer steps. `steps_per_loop` is Google's
    `iterations_per_loop`: the most steps run inside one compiled call.

    `eval_every_n_steps` (0: off) evaluates during training; `keep_best_checkpoint_by` names an
    evaluation metric (losses are minimised, other metrics maximised) whose best evaluation's
    weights become the final Google checkpoint; `early_stopping_patience` (0: off) stops after
    that many evaluations without a better value of that metric (or of the task's default one).
    """

    output_dir: str
    train_batch_size: int = 32
    eval_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    save_checkpoints_steps: int = 1000
    optimizer_type: str = "adamw"
    weight_decay_rate: float = 0.01
    clip_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "float32"
    jit_compile: bool = False
    log_steps: int = 100
    steps_per_loop: int = 100
    seed: int | None = None
    keep_checkpoint_max: int = 5
    init_checkpoint: str | None = None
    handle_sigterm: bool = True
    eval_every_n_steps: int = 0
    keep_best_checkpoint_by: str | None = None
    early_stopping_patience: int = 0

    POSITIVE = ("train_batch_size", "eval_batch_size", "save_checkpoints_steps",
                "gradient_accumulation_steps", "log_steps", "steps_per_loop",
                "keep_checkpoint_max")
    NON_NEGATIVE = ("num_warmup_steps", "eval_every_n_steps", "early_stopping_patience")

    def validate(self) -> None:
        """Raises TrainingError naming the first bad field."""
        for name in self.POSITIVE + ("num_train_steps",):
            _check_int(name, getattr(self, name), minimum=1)
        for name in self.NON_NEGATIVE:
            _check_int(name, getattr(self, name), minimum=0)
        if self.num_warmup_steps > self.num_train_steps:
            raise TrainingError(f"num_warmup_steps ({self.num_warmup_steps}) must not exceed "
                                f"num_train_steps ({self.num_train_steps})")
        if self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise TrainingError(f"mixed_precision must be one of "
                                f"{', '.join(MIXED_PRECISION_POLICIES)}, got "
                                f"{self.mixed_precision!r}")
        if not self.output_dir:
            raise TrainingError("output_dir is required")
        if (self.keep_best_checkpoint_by or self.early_stopping_patience) \
                and not self.eval_every_n_steps:
            raise TrainingError("keep_best_checkpoint_by and early_stopping_patience need "
                                "eval_every_n_steps > 0 (evaluations during training)")


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise TrainingError(f"{name} must be {what}, got {value!r}")
