"""Training throughput: bert_tf vs keras-hub's BertMaskedLM vs Hugging Face PyTorch, one run.

`--head=pretraining` (default) times a pretraining step; the other heads a fine-tuning step
against the Hugging Face model of the same task (keras-hub has no comparable peer for them in
this harness), each on its Google-style loss (`HEADS` below):
  * `classifier`: BertClassifier vs HF BertForSequenceClassification, 2 classes;
  * `token_classifier`: BertTokenClassifier vs HF BertForTokenClassification, 13 tags (WNUT-17's),
    random tags with about a third of the positions unscored (weight 0 / label -100, as the
    non-first pieces of words are in NER training);
  * `span_qa`: BertSpanQA vs HF BertForQuestionAnswering, random start and end positions.

    .venv/bin/python bench/pretraining.py [--config=configs/bert_base.json] [--batch_size=8]
        [--seq_length=128] [--steps=3] [--repeats=1] [--precisions=float32,mixed_bfloat16]
        [--json_output=PATH]

Each (implementation, precision) is timed in its own subprocess of this script (same machine,
same batch, back to back; --repeats fresh subprocesses each, their timed steps pooled), so
thread pools and memory of one don't disturb the next. A step is
forward + backward + optimizer update on random Google-format pretraining features (20 masked
positions per sequence). Peers:
  * keras-hub BertMaskedLM (MLM head only: keras-hub has no NSP head) with keras AdamW;
  * Hugging Face `transformers` BertForPreTraining (MLM + NSP) in PyTorch with torch AdamW,
    bf16 via `torch.autocast` (needs `pip install -e '.[bench]'`; skipped if torch is absent),
    AdamW with `fused=True` (torch's documentation: the fastest of its implementations; the
    default on CPU is the for-loop one).
Model FLOPs utilisation uses 6 × parameters-in-matmuls × tokens + attention FLOPs per step, against
this CPU's nominal peak (AMX bf16 ≈ 5.3 TFLOP/s, fp32 ≈ 0.33 TFLOP/s on 2 cores); bench/report.py
adds the MFU against the peak bench/peak.py measures in the same run.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("config", os.path.join(REPO, "configs", "bert_base.json"), "bert_config.json")
flags.DEFINE_integer("batch_size", 8, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence.")
flags.DEFINE_integer("steps", 3, "Timed steps (after 2 warm-up steps).")
flags.DEFINE_integer("repeats", 1, "Subprocesses per (implementation, precision), each timing "
                     "--steps steps; all their steps are pooled.")
flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                    "format) to this path.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
flags.DEFINE_list("impls", ["bert_tf", "keras_hub", "torch"], "Implementations to measure.")
from training_heads import HEADS, bert_tf_loss, hf_labels, random_batch  # noqa: E402
# Nominal peaks; bench/report.py adds the MFU against the peak bench/peak.py measures.
from report import NOMINAL_PEAK_FLOPS as PEAK_FLOPS  # noqa: E402

flags.DEFINE_enum("head", "pretraining", list(HEADS),
                  "pretraining: MLM + NSP step; the others a fine-tuning step against the "
                  "Hugging Face model of the same task (see the module docstring).")
flags.DEFINE_string("worker", None, "(internal) impl:precision to time in this process.")
FLAGS = flags.FLAGS


def impl_names(head: str) -> dict[str, str]:
    names = {"bert_tf": f"bert_tf {HEADS[head].ours} + AdamWeightDecay",
             "torch": f"HF {HEADS[head].hf} (PyTorch) + AdamW"}
    if head == "pretraining":
        names["keras_hub"] = "keras-hub BertMaskedLM (no NSP head) + AdamW"
    return names


def train_flops(cfg, batch, seq, preds, position_logits=0) -> float:
    """Matmul FLOPs of one training step (forward ×3 for backward); `position_logits`: outputs
    of a head on every position (token classification, span QA)."""
    h, i, layers, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    per_token_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq * h  # projections + QK^T and AV
    forward = batch * seq * layers * per_token_layer + batch * preds * 2 * (h * h + h * v) + batch * 2 * h * h
    return 3.0 * (forward + batch * seq * 2 * h * position_logits)


def _time(step, steps):
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _worker_tf(impl, precision, cfg, features):
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(precision)
    if impl == "bert_tf":
        from bert_tf import models
        from bert_tf.config import BertConfig
        from bert_tf.training.optimization import create_optimizer

        head = HEADS[FLAGS.head]
        model = getattr(models, head.ours)(BertConfig.from_dict(cfg), **head.ours_kwargs)
        optimizer = create_optimizer(1e-4, 10_000, 100)

        def compute_loss(f):
            return bert_tf_loss(FLAGS.head, model, f)

        @tf.function
        def step(f):
            with tf.GradientTape() as tape:
                loss = compute_loss(f)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
    else:
        import keras_hub

        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=cfg["vocab_size"], num_layers=cfg["num_hidden_layers"],
            num_heads=cfg["num_attention_heads"], hidden_dim=cfg["hidden_size"],
            intermediate_dim=cfg["intermediate_size"], max_sequence_length=cfg["max_position_embeddings"],
            num_segments=cfg["type_vocab_size"])
        model = keras_hub.models.BertMaskedLM(backbone)
        optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function
        def step(f):
            x = {"token_ids": f["input_ids"], "segment_ids": f["segment_ids"],
                 "padding_mask": f["input_mask"], "mask_positions": f["masked_lm_positions"]}
            with tf.GradientTape() as tape:
                logits = tf.cast(model(x, training=True), tf.float32)
                loss = loss_fn(f["masked_lm_ids"], logits, sample_weight=f["masked_lm_weights"])
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
    tensors = {k: tf.constant(v) for k, v in features.items()}
    return _time(lambda: float(step(tensors)), FLAGS.steps)


def _worker_torch(precision, cfg, features):
    import torch
    import transformers
    from transformers import BertConfig as HFConfig

    torch.manual_seed(0)
    hf = HFConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
                  intermediate_size=cfg["intermediate_size"], hidden_act="gelu_new",
                  max_position_embeddings=cfg["max_position_embeddings"], type_vocab_size=cfg["type_vocab_size"],
                  layer_norm_eps=1e-12)
    head = HEADS[FLAGS.head]
    if head.num_labels:
        hf.num_labels = head.num_labels
    model = getattr(transformers, head.hf)(hf).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6,
                                  fused=True)
    f = {k: torch.from_numpy(v) for k, v in features.items()}
    labels = hf_labels(FLAGS.head, f)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "mixed_bfloat16"):
            out = model(input_ids=f["input_ids"].long(), attention_mask=f["input_mask"].long(),
                        token_type_ids=f["segment_ids"].long(), **labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return _time(step, FLAGS.steps)


def _run_worker(spec: str) -> None:
    impl, precision = spec.split(":")
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    features = random_batch(cfg, FLAGS.batch_size, FLAGS.seq_length, FLAGS.max_predictions_per_seq)
    if impl == "torch":
        times = _worker_torch(precision, cfg, features)
    else:
        times = _worker_tf(impl, precision, cfg, features)
    print("RESULT " + json.dumps({"times": times}))


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.max_predictions_per_seq
    names = impl_names(FLAGS.head)
    impls = [i for i in FLAGS.impls if i in names]  # keras-hub: pretraining only
    if FLAGS.head != "pretraining":
        p = 0  # no MLM head: train_flops then counts the encoder (+ pooler) and the task head
    flops = train_flops(cfg, b, s, p, HEADS[FLAGS.head].position_logits)
    print(f"config {os.path.basename(FLAGS.config)}: L{cfg['num_hidden_layers']} H{cfg['hidden_size']}; "
          f"batch {b} × seq {s}, {p} predictions; {flops / b / 1e9:.1f} GFLOP per training sequence; "
          f"{os.cpu_count()} CPUs; {FLAGS.steps} timed steps after 2 warm-up")
    results, errors_all = {}, {}
    for precision in FLAGS.precisions:
        for impl in impls:
            cmd = [sys.executable, os.path.abspath(__file__), f"--worker={impl}:{precision}",
                   f"--config={FLAGS.config}", f"--batch_size={b}", f"--seq_length={s}",
                   f"--max_predictions_per_seq={p}", f"--steps={FLAGS.steps}",
                   f"--head={FLAGS.head}"]
            times, errors = [], {}
            for _ in range(FLAGS.repeats):
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                    errors[(impl, precision)] = tail[:160]
                    print(f"  {impl} {precision}: not measured ({tail[:160]})")
                    break
                times += json.loads(lines[-1][7:])["times"]
            results[(impl, precision)] = None if errors else times
            errors_all.update(errors)
    print()
    print("| implementation | precision | examples/s (best) | examples/s (median) | bert_tf ÷ this | MFU |")
    print("|---|---|---:|---:|---:|---:|")
    for precision in FLAGS.precisions:
        ours = results.get(("bert_tf", precision))
        ours_rate = b / min(ours) if ours else None
        for impl in impls:
            times = results.get((impl, precision))
            if not times:
                print(f"| {impl} | {precision} | — | — | — | — |")
                continue
            best, median = b / min(times), b / statistics.median(times)
            ratio = f"{ours_rate / best:.2f}×" if ours_rate else "—"
            mfu = flops / min(times) / PEAK_FLOPS.get(precision, float("nan"))
            print(f"| {impl} | {precision} | {best:.2f} | {median:.2f} | {ratio} | {mfu:.1%} |")
    if FLAGS.json_output:
        from report import result_row, write_results

        rows = []
        for precision in FLAGS.precisions:
            for impl in impls:
                times = results.get((impl, precision)) or []
                rows.append(result_row(
                    names[impl], "training throughput", "examples/s",
                    [b / t for t in times], better="higher", ours=impl == "bert_tf",
                    group=precision, flops_per_item=flops / b,
                    peak_flops=PEAK_FLOPS.get(precision), note=errors_all.get((impl, precision))))
        what = HEADS[FLAGS.head].what.format(p=p)
        write_results(FLAGS.json_output, f"pretraining_{FLAGS.head}", rows,
                      info={"train_gflop_per_example": flops / b / 1e9},
                      description=f"{os.path.basename(FLAGS.config)} (L{cfg['num_hidden_layers']} "
                                  f"H{cfg['hidden_size']}) {what} (forward, backward, "
                                  f"update), batch {b} × seq {s}; {FLAGS.steps} timed steps "
                                  f"after 2 warm-up × {FLAGS.repeats} process(es); "
                                  f"{flops / b / 1e9:.1f} GFLOP per training example")


if __name__ == "__main__":
    app.run(main)
