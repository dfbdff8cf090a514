"""Op breakdown of one bert_tf training step (TF profiler): where the non-matmul time goes.

    .venv/bin/python bench/profile_step.py [--config=configs/bert_base.json] [--batch_size=8]
        [--seq_length=128] [--precision=mixed_bfloat16] [--steps=3] [--top=15]
        [--forms=current|oldest|dropout=keras,layer_norm=keras,attention=separate]

Builds a `BertClassifier` (2 classes, random init) with the --precision Keras policy and
`bert_tf.training.optimization.create_optimizer` (AdamWeightDecay, clip-norm 1.0), runs a
`tf.function` training step (forward, backward, update) to warm up, then profiles --steps steps
with `tf.profiler.experimental` and sums the executed TensorFlow ops' time on the host threads
by category: matmul (MatMul/BatchMatMul/Einsum and oneDNN's fused variants), casts, dropout RNG
(random ops and the mask arithmetic under `dropout` name scopes), layer norm, softmax,
optimizer update (ops under the optimizer's name scope and resource-apply/assign ops), and
other elementwise. Times are summed over the ops of all threads (CPU time, not wall-clock): the
shares show what is not matmul. The table prints the categories, then the --top op types.
--forms profiles the step with earlier forms of its pieces patched in (bench/step_forms.py), for
the breakdown before a change; bench/step_ab.py times old and new forms against each other.
"""
from __future__ import annotations

import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, REPO)

from absl import app, flags  # noqa: E402

flags.DEFINE_string("config", os.path.join(REPO, "configs", "bert_base.json"), "bert_config.json")
flags.DEFINE_integer("batch_size", 8, "Examples per step.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_enum("precision", "mixed_bfloat16", ["float32", "mixed_bfloat16"], "Keras policy.")
flags.DEFINE_integer("steps", 3, "Profiled steps (after 2 warm-up steps).")
flags.DEFINE_integer("top", 15, "Op types listed.")
flags.DEFINE_string("json_output", None, "Also write the breakdown as JSON here.")
flags.DEFINE_string("forms", "current", "Forms of the step's pieces (bench/step_forms.py): "
                    "current, oldest, or piece=form,...")
FLAGS = flags.FLAGS

MATMUL = re.compile(r"(MatMul|Einsum|Conv)", re.I)
RNG = re.compile(r"(Random|RngBitGenerator|Philox)", re.I)
OPTIMIZER_OPS = re.compile(r"^(ResourceApply|Assign(Add|Sub)?VariableOp)")


def categorize(op_name: str, op_type: str) -> str:
    """The category of one executed op (name scopes decide for the ambiguous elementwise ops)."""
    scope = op_name.lower()
    if MATMUL.search(op_type):
        return "matmul"
    if RNG.search(op_type) or "dropout" in scope:
        return "dropout (RNG + mask)"
    if "optimizer" in scope or "adamweightdecay" in scope or OPTIMIZER_OPS.match(op_type):
        return "optimizer update"
    if op_type in ("Cast", "_MklCast"):
        return "cast"
    if "layernorm" in scope or "layer_norm" in scope or "FusedBatchNorm" in op_type:
        return "layer norm"
    if "Softmax" in op_type:
        return "softmax"
    return "other (elementwise, reductions, gathers, copies)"


def op_times(logdir: str) -> dict[tuple[str, str], float]:
    """(op name, op type) → summed duration (µs) of the TF op events in the profile's XSpace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[tuple[str, str], float] = collections.defaultdict(float)
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            names = {k: m.name for k, m in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    # Executed TF ops are traced as "op_name:OpType" (kernels, not functions).
                    match = re.fullmatch(r"([^:#]+):([A-Za-z_][A-Za-z0-9_]*)", name)
                    if match and not match.group(2).startswith(("__inference", "StatefulPartitioned",
                                                                "PartitionedCall")):
                        totals[(match.group(1), match.group(2))] += event.duration_ps / 1e6
    return totals


def build_step(forms: str = "current"):
    """The traced training step with the given forms of its pieces (bench/step_forms.py)."""
    import keras
    import tensorflow as tf

    from bert_tf import BertClassifier, BertConfig
    from bert_tf.training.optimization import create_optimizer

    keras.utils.set_random_seed(0)
    config = BertConfig.from_json_file(FLAGS.config)
    dtype = None if FLAGS.precision == "float32" else keras.DTypePolicy(FLAGS.precision)
    model = BertClassifier(config, num_classes=2, dtype=dtype)
    optimizer = create_optimizer(2e-5, 1000, 100)
    b, s = FLAGS.batch_size, FLAGS.seq_length
    ids = tf.random.stateless_uniform([b, s], [1, 2], 5, config.vocab_size, tf.int32)
    inputs = {"input_word_ids": ids, "input_mask": tf.ones([b, s], tf.int32),
              "input_type_ids": tf.zeros([b, s], tf.int32)}
    labels = tf.zeros([b], tf.int32)
    model(inputs)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    import step_forms

    with step_forms.forms(step_forms.parse(forms)):
        step.get_concrete_function()  # traced now, with these forms
    return step


def main(argv) -> None:
    del argv
    import tensorflow as tf

    step = build_step(FLAGS.forms)
    for _ in range(2):
        step().numpy()
    logdir = tempfile.mkdtemp(prefix="bench_profile_")
    start = time.perf_counter()
    tf.profiler.experimental.start(logdir)
    for _ in range(FLAGS.steps):
        step().numpy()
    tf.profiler.experimental.stop()
    wall = (time.perf_counter() - start) / FLAGS.steps
    totals = op_times(logdir)
    by_category: dict[str, float] = collections.defaultdict(float)
    by_type: dict[str, float] = collections.defaultdict(float)
    for (name, op_type), us in totals.items():
        by_category[categorize(name, op_type)] += us
        by_type[op_type] += us
    total = sum(by_category.values()) or 1.0
    print(f"{os.path.basename(FLAGS.config)}, batch {FLAGS.batch_size} × {FLAGS.seq_length}, "
          f"{FLAGS.precision}, forms {FLAGS.forms}: {wall * 1e3:.0f} ms per profiled step "
          f"(wall, with the profiler); "
          f"op time summed over threads {total / 1e3 / FLAGS.steps:.0f} ms per step")
    print("\n| category | ms per step | share |\n|---|---:|---:|")
    for category, us in sorted(by_category.items(), key=lambda kv: -kv[1]):
        print(f"| {category} | {us / 1e3 / FLAGS.steps:.1f} | {us / total:.1%} |")
    print(f"\n| op type (top {FLAGS.top}) | ms per step | share |\n|---|---:|---:|")
    for op_type, us in sorted(by_type.items(), key=lambda kv: -kv[1])[:FLAGS.top]:
        print(f"| {op_type} | {us / 1e3 / FLAGS.steps:.1f} | {us / total:.1%} |")
    if FLAGS.json_output:
        with open(FLAGS.json_output, "w", encoding="utf-8") as f:
            json.dump({"wall_ms_per_step": wall * 1e3, "categories_us": by_category,
                       "op_types_us": by_type, "steps": FLAGS.steps}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
