"""Fine-tuning wall-clock: one epoch of MRPC train + dev accuracy, bert_tf vs an HF PyTorch loop.

    .venv/bin/python bench/finetuning_epoch.py [--config=configs/bert_small.json]
        [--max_seq_length=128] [--batch_size=32] [--learning_rate=5e-5] [--epochs=1]
        [--impls=bert_tf,torch] [--precisions=float32,mixed_bfloat16] [--ours_flags=...]
        [--max_train_examples=0] [--json_output=...]

Both sides start from the same random initialisation shape (--config, BERT-small by default; no
pretrained weights: the figure is the time, the accuracy only shows both trained), the same
vocab, batch size, learning rate, warmup (10%, then linear decay) and Adam with weight decay
0.01 (LayerNorm and biases excluded), on the same MRPC train.tsv / dev.tsv (GLUE from
../shared/data, else the same-length stdlib fallback of bench/real_text.py written in MRPC's
layout), each a fresh process timed from start to exit:
  * bert_tf: `run_classifier.py --do_train --do_eval` with --mixed_precision and the extra
    --ours_flags (the length-bucketed input pipeline's flag goes there once the trainer has it);
  * torch: Hugging Face `BertTokenizerFast` (truncation at --max_seq_length, no padding) +
    `BertForSequenceClassification`, `DataCollatorWithPadding` (each batch padded to its longest
    pair: dynamic padding, what `Trainer` does), `torch.optim.AdamW` with
    `get_linear_schedule_with_warmup`, bf16 via `torch.autocast("cpu")`, then dev accuracy.
Reported: the process wall-clock (import, data, one epoch, dev evaluation) and the dev accuracy.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, REPO)

from absl import app, flags  # noqa: E402

flags.DEFINE_string("config", os.path.join(REPO, "configs", "bert_small.json"), "bert_config.json")
flags.DEFINE_integer("max_seq_length", 128, "Truncation length (both sides).")
flags.DEFINE_integer("batch_size", 32, "Training batch size (both sides).")
flags.DEFINE_integer("eval_batch_size", 32, "Dev batch size (both sides).")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate (both sides).")
flags.DEFINE_float("epochs", 1.0, "Training epochs.")
flags.DEFINE_list("impls", ["bert_tf", "torch"], "Implementations to time.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to time.")
flags.DEFINE_list("ours_flags", [], "Extra run_classifier.py flags for bert_tf (comma "
                  "separated, e.g. the bucketing flag).")
flags.DEFINE_integer("max_train_examples", 0, "Use only the first N training pairs (0: all; "
                     "for a smoke test).")
flags.DEFINE_integer("max_eval_examples", 0, "Use only the first N dev pairs (0: all).")
flags.DEFINE_integer("seed", 0, "Seed of both sides.")
flags.DEFINE_integer("torch_threads", 0, "torch.set_num_threads (0: torch's default).")
flags.DEFINE_string("vocab_file", None, "vocab.txt (default: Google's uncased vocab from "
                    "../shared/data, else one learned from the stdlib corpus).")
flags.DEFINE_string("work_dir", None, "Data and outputs (default: a temporary directory).")
flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                    "format) to this path.")
flags.DEFINE_string("worker", None, "(internal) torch:<precision>: run the HF loop here.")
FLAGS = flags.FLAGS

IMPL_NAMES = {"bert_tf": "bert_tf run_classifier.py",
              "torch": "HF BertForSequenceClassification loop (DataCollatorWithPadding)"}
MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


# ----------------------------------------------------------------------------- data
def _write_mrpc(path: str, items, labels) -> None:
    """MRPC's own layout: the label column holds the data files' "0"/"1", not the label names
    the processor reads them as."""
    from bert_tf.data.glue import submission_label

    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None,
                            quotechar=None, lineterminator="\n")
        writer.writerow(MRPC_HEADER)
        for i, ((a, b), label) in enumerate(zip(items, labels)):
            writer.writerow([submission_label("mrpc", label), 2 * i, 2 * i + 1,
                             a.replace("\t", " "), b.replace("\t", " ")])


def prepare_data(work: str) -> tuple[str, str, str]:
    """MRPC train.tsv/dev.tsv (cut to the --max_* limits) and vocab.txt in work/; returns
    (data_dir, vocab_file, description)."""
    from real_text import load
    from report import shared_vocab_file

    data_dir = os.path.join(work, "MRPC")
    os.makedirs(data_dir, exist_ok=True)
    sources = []
    for name, split, limit in (("mrpc_train", "train", FLAGS.max_train_examples),
                               ("mrpc", "dev", FLAGS.max_eval_examples)):
        items, labels, source = load(name)
        if limit:
            items, labels = items[:limit], labels[:limit]
            source += f", first {limit}"
        _write_mrpc(os.path.join(data_dir, f"{split}.tsv"), items, labels)
        sources.append(source)
    vocab_file = FLAGS.vocab_file or shared_vocab_file()
    target = os.path.join(work, "vocab.txt")
    if vocab_file:
        shutil.copyfile(vocab_file, target)
    else:
        from bert_tf.text.build_vocab import count_words, learn_vocab
        from corpus import stdlib_docstring_lines

        with open(FLAGS.config) as fh:
            size = json.load(fh)["vocab_size"]
        tokens = learn_vocab(count_words(stdlib_docstring_lines(), True), vocab_size=size)
        with open(target, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in tokens))
        vocab_file = "learned from the stdlib corpus"
    return data_dir, target, f"{'; '.join(sources)}; vocab {vocab_file}"


# ----------------------------------------------------------------------------- bert_tf
def run_bert_tf(work: str, data_dir: str, vocab_file: str, precision: str) -> dict:
    output_dir = os.path.join(work, f"bert_tf_{precision}")
    shutil.rmtree(output_dir, ignore_errors=True)
    cmd = [sys.executable, os.path.join(REPO, "run_classifier.py"), "--task_name=mrpc",
           f"--data_dir={data_dir}", f"--vocab_file={vocab_file}",
           f"--bert_config_file={FLAGS.config}", "--do_train", "--do_eval",
           f"--max_seq_length={FLAGS.max_seq_length}", f"--train_batch_size={FLAGS.batch_size}",
           f"--eval_batch_size={FLAGS.eval_batch_size}",
           f"--learning_rate={FLAGS.learning_rate}", f"--num_train_epochs={FLAGS.epochs}",
           f"--mixed_precision={precision}", f"--seed={FLAGS.seed}",
           f"--output_dir={output_dir}", "--save_checkpoints_steps=1000000",
           *FLAGS.ours_flags]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return {"error": (lines[-1] if lines else f"exit {proc.returncode}")[:200]}
    results = {}
    with open(os.path.join(output_dir, "eval_results.txt"), encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(" = ")
            try:
                results[key.strip()] = float(value)
            except ValueError:
                pass
    accuracy = next((v for k, v in results.items() if re.search(r"(^|_)acc(uracy)?$", k)), None)
    return {"wall_s": seconds, "accuracy": accuracy, "command": cmd[1:]}


# ----------------------------------------------------------------------------- torch
def _torch_worker(precision: str) -> dict:
    """The HF PyTorch loop, in this process (a `--worker=torch:<precision>` subprocess)."""
    start = time.perf_counter()
    try:
        import torch
        from torch.utils.data import DataLoader
        from transformers import (BertConfig, BertForSequenceClassification, BertTokenizerFast,
                                  DataCollatorWithPadding, get_linear_schedule_with_warmup)
    except ImportError as e:
        return {"skip": f"torch/transformers not installed ({e.name}): pip install -e '.[bench]'"}
    import inspect

    from bert_tf.data.glue import MrpcProcessor

    if FLAGS.torch_threads:
        torch.set_num_threads(FLAGS.torch_threads)
    torch.manual_seed(FLAGS.seed)
    work = FLAGS.work_dir
    data_dir = os.path.join(work, "MRPC")
    vocab_file = os.path.join(work, "vocab.txt")
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters \
        else "vocab_file"
    tokenizer = BertTokenizerFast(**{key: vocab_file}, do_lower_case=True)
    processor = MrpcProcessor()
    labels = processor.get_labels()

    def encode(examples):
        enc = tokenizer([e.text_a for e in examples], [e.text_b for e in examples],
                        truncation=True, max_length=FLAGS.max_seq_length)
        return [dict({k: v[i] for k, v in enc.items()}, labels=labels.index(e.label))
                for i, e in enumerate(examples)]

    train = encode(processor.get_train_examples(data_dir))
    dev = encode(processor.get_dev_examples(data_dir))
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        # Google's "gelu" is the tanh approximation, HF's "gelu_new" (its "gelu" is erf).
        intermediate_size=cfg["intermediate_size"], hidden_act="gelu_new",
        hidden_dropout_prob=cfg["hidden_dropout_prob"],
        attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"],
        max_position_embeddings=cfg["max_position_embeddings"],
        type_vocab_size=cfg["type_vocab_size"], initializer_range=cfg["initializer_range"],
        layer_norm_eps=1e-12, num_labels=len(labels)))
    collator = DataCollatorWithPadding(tokenizer)  # pads each batch to its longest pair
    loader = DataLoader(train, batch_size=FLAGS.batch_size, shuffle=True, collate_fn=collator,
                        generator=torch.Generator().manual_seed(FLAGS.seed))
    # Google's optimizer settings: weight decay 0.01 except LayerNorm and biases, epsilon 1e-6.
    no_decay = [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")]
    decay = [p for n, p in model.named_parameters()
             if not ("LayerNorm" in n or n.endswith("bias"))]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=FLAGS.learning_rate, eps=1e-6)
    steps = int(len(loader) * FLAGS.epochs)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    bf16 = precision == "mixed_bfloat16"
    model.train()
    train_start, step = time.perf_counter(), 0
    while step < steps:
        for batch in loader:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == steps:
                break
    train_s = time.perf_counter() - train_start
    model.eval()
    correct = 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for batch in DataLoader(dev, batch_size=FLAGS.eval_batch_size, collate_fn=collator):
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
    return {"wall_s": time.perf_counter() - start, "train_loop_s": train_s,
            "accuracy": correct / len(dev), "steps": steps, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def run_torch(work: str, precision: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), f"--worker=torch:{precision}",
           f"--work_dir={work}"]
    for name in ("config", "max_seq_length", "batch_size", "eval_batch_size", "learning_rate",
                 "epochs", "seed", "torch_threads"):
        cmd.append(f"--{name}={getattr(FLAGS, name)}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start  # the whole process, as for bert_tf
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        err = [line for line in proc.stderr.splitlines() if line.strip()]
        return {"error": (err[-1] if err else f"exit {proc.returncode}")[:200]}
    result = json.loads(lines[-1][len("RESULT "):])
    if "wall_s" in result:
        result["wall_s"] = seconds
    return result


# ----------------------------------------------------------------------------- driver
def main(argv) -> None:
    del argv
    if FLAGS.worker:
        print("RESULT " + json.dumps(_torch_worker(FLAGS.worker.split(":")[1])), flush=True)
        return
    temporary = not FLAGS.work_dir
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_finetune_")
    os.makedirs(work, exist_ok=True)
    try:
        data_dir, vocab_file, described = prepare_data(work)
        print(f"{os.path.basename(FLAGS.config)}, random init; seq {FLAGS.max_seq_length}, batch "
              f"{FLAGS.batch_size}, lr {FLAGS.learning_rate}, {FLAGS.epochs} epoch(s); "
              f"{described}; bert_tf flags: {' '.join(FLAGS.ours_flags) or '(none)'}", flush=True)
        results = {}
        for precision in FLAGS.precisions:
            for impl in FLAGS.impls:
                result = run_bert_tf(work, data_dir, vocab_file, precision) \
                    if impl == "bert_tf" else run_torch(work, precision)
                results[(impl, precision)] = result
                what = result.get("skip") or result.get("error") or (
                    f"{result['wall_s']:.1f} s, dev accuracy {result['accuracy']}")
                print(f"  {impl} {precision}: {what}", flush=True)
        if FLAGS.json_output:
            _write_json(results, described)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


def _write_json(results: dict, described: str) -> None:
    from report import result_row, write_results

    rows = []
    for (impl, precision), result in results.items():
        common = dict(group=precision, ours=impl == "bert_tf",
                      note=result.get("skip") or result.get("error"))
        ok = "wall_s" in result
        rows.append(result_row(IMPL_NAMES[impl], "one epoch + dev eval, process wall-clock", "s",
                               [result["wall_s"]] if ok else [], better="lower", **common))
        if ok and result.get("accuracy") is not None:
            rows.append(result_row(IMPL_NAMES[impl], "dev accuracy", "", [result["accuracy"]],
                                   better=None, **common))
    write_results(FLAGS.json_output, "finetuning_epoch", rows,
                  info={f"{i}:{p}": r for (i, p), r in results.items()},
                  description=f"MRPC, {os.path.basename(FLAGS.config)} random init, seq "
                              f"{FLAGS.max_seq_length}, batch {FLAGS.batch_size}, lr "
                              f"{FLAGS.learning_rate}, {FLAGS.epochs} epoch(s); {described}; "
                              f"bert_tf flags: {' '.join(FLAGS.ours_flags) or '(none)'}")


if __name__ == "__main__":
    app.run(main)
