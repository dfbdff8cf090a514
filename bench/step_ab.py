"""Old against new forms of the training step, alternating in one process (issue 16).

    .venv/bin/python bench/step_ab.py --config=configs/bert_small.json --batch_size=8 \
        --seq_length=128 --precision=mixed_bfloat16 --a=dropout=keras --b=current \
        [--rounds=6] [--steps_per_round=3]

Builds bench/profile_step.py's training step (BertClassifier + AdamWeightDecay, same seed, so
the same weights) twice: A traced with the --a forms of its pieces, B with the --b forms
(bench/step_forms.py: "current", "oldest" or piece=form,...). After two warm-up steps each,
runs A and B alternately --rounds times, --steps_per_round steps each, so both see the same
machine state, and prints each one's median and best ms per step and B's speed-up (A / B on the
medians). On a CPU shared with other jobs, trust the medians of several rounds only.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

import profile_step  # noqa: E402  (defines --config, --batch_size, --seq_length, --precision)

flags.DEFINE_string("a", "oldest", "Forms of step A.")
flags.DEFINE_string("b", "current", "Forms of step B.")
flags.DEFINE_integer("rounds", 6, "Alternations of A and B.")
flags.DEFINE_integer("steps_per_round", 3, "Steps of each per round.")
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    steps = {"A": profile_step.build_step(FLAGS.a), "B": profile_step.build_step(FLAGS.b)}
    for step in steps.values():
        for _ in range(2):
            step().numpy()
    times: dict[str, list[float]] = {"A": [], "B": []}
    for _ in range(FLAGS.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(FLAGS.steps_per_round):
                step().numpy()
            times[name].append((time.perf_counter() - start) / FLAGS.steps_per_round)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{os.path.basename(FLAGS.config)}, batch {FLAGS.batch_size} × {FLAGS.seq_length}, "
          f"{FLAGS.precision}, {FLAGS.rounds} rounds × {FLAGS.steps_per_round} steps")
    for name, forms in (("A", FLAGS.a), ("B", FLAGS.b)):
        print(f"  {name} ({forms}): median {median[name] * 1e3:.1f} ms, "
              f"best {min(times[name]) * 1e3:.1f} ms per step")
    print(f"  B speed-up: {median['A'] / median['B']:.3f}x")


if __name__ == "__main__":
    app.run(main)
