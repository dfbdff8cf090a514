"""Serving latency and throughput: strings in → classifier outputs, bert_tf vs peers, one run.

    .venv/bin/python bench/serving.py [--config=configs/bert_base.json] [--seq_length=128]
        [--batch_size=32] [--latency_requests=40] [--repeats=3]
        [--impls=bert_tf,torch,keras_hub,tflite] [--precisions=float32,mixed_bfloat16]

Every implementation gets raw strings and returns class probabilities (a 2-class classifier with
random weights: only speed is measured), tokenization included, in this process's Python:
  * bert_tf: the classifier exported by `bert_tf.serving.export` (string signature, tf-text
    tokenization inside the graph), loaded back with `tf.saved_model.load` and called through
    `signatures["serving_default"]`; the bf16 row (`mixed_bfloat16`) is exported with
    `dtype_policy="bfloat16"` (bfloat16 weights, LayerNorm and softmax in float32), the
    recommended serving setting;
  * torch: Hugging Face `BertTokenizerFast` (Rust, from the same vocab.txt) +
    `BertForSequenceClassification` (same config) in eval mode under `torch.inference_mode`,
    bf16 via `torch.autocast("cpu")` (needs `pip install -e '.[bench]'`; skipped without torch);
  * keras_hub: `BertTextClassifierPreprocessor` (its `BertTokenizer` built from the vocab list) +
    `BertTextClassifier` (a `BertBackbone` with a Dense head on the pooled output), the two
    called in one `tf.function` over a string batch; mixed_bfloat16 via the global Keras policy;
  * tflite: the same exported classifier converted by `bert_tf.serving.tflite` (string input,
    in-graph tokenization, batch 1 only) with --tflite_quantize none / float16 / dynamic_int8,
    run by its `Runner`: batch-1 latency and file size.

Each (implementation, precision) runs in its own subprocess of this script, back to back on the
same texts, after warm-up calls. Texts are consecutive docstring lines of Python's standard
library (bench/corpus.py) joined to ≥ --min_chars characters, so most fill --seq_length tokens;
the vocab is --vocab_file (default: Google's uncased vocab from ../shared/data when present,
else a WordPiece vocab learned from the same corpus by bert_tf.text.build_vocab).

Latency: --latency_requests requests of one text per repeat, p50 and p99 of them (ms). Throughput:
--throughput_batches batches of --batch_size texts per repeat (sequences/s). The table shows the
median over --repeats (and the best), the speed-up of bert_tf over each peer at the same precision
(TFLite: against bert_tf float32), and the model FLOPs utilisation at --batch_size: forward matmul
FLOPs per sequence from the config (≈ 22.4 GFLOP for BERT-base at 128 tokens) against this CPU's
peak (fp32 ≈ 0.33, AMX bf16 ≈ 5.3 TFLOP/s on 2 cores; docs/architecture.md#performance-facts).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("config", os.path.join(REPO, "configs", "bert_base.json"), "bert_config.json")
flags.DEFINE_integer("seq_length", 128, "Packed sequence length (max_seq_length of the export).")
flags.DEFINE_integer("batch_size", 32, "Texts per call in the throughput measurement.")
flags.DEFINE_integer("latency_requests", 40, "Batch-1 requests per repeat (after warm-up).")
flags.DEFINE_integer("throughput_batches", 3, "Batches of --batch_size per repeat.")
flags.DEFINE_integer("warmup", 5, "Untimed batch-1 calls (plus one full batch) before timing.")
flags.DEFINE_integer("repeats", 3, "Timed repeats per implementation (latency and throughput).")
flags.DEFINE_list("impls", ["bert_tf", "torch", "keras_hub", "tflite"],
                  "Implementations to measure.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
flags.DEFINE_list("tflite_quantize", ["none", "float16", "dynamic_int8"],
                  "TFLite conversions to measure (the `quantize` of bert_tf.serving.tflite).")
flags.DEFINE_integer("torch_threads", 0, "torch.set_num_threads for the PyTorch peer (0: "
                     "torch's default, one per core). Its OpenMP threads wait badly when other "
                     "processes load the cores: compare with 1 on a busy machine.")
flags.DEFINE_string("vocab_file", None, "vocab.txt (default: Google's uncased vocab from "
                    "../shared/data when present, else one learned from the corpus).")
flags.DEFINE_bool("do_lower_case", True, "Uncased tokenization.")
flags.DEFINE_integer("num_texts", 512, "Distinct texts (requests cycle through them).")
flags.DEFINE_integer("min_chars", 600, "Docstring lines are joined until a text has this many "
                     "characters.")
flags.DEFINE_string("work_dir", None, "Where the vocab, texts and exported models go "
                    "(default: a temporary directory, removed afterwards).")
flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                    "format) to this path.")
flags.DEFINE_string("worker", None, "(internal) step:impl:precision to run in this process.")
FLAGS = flags.FLAGS

PEAK_FLOPS = {"float32": 0.33e12, "mixed_bfloat16": 5.3e12}  # docs/architecture.md#performance-facts, this 2-core CPU
# bert_tf's bf16 SavedModel is exported as users should serve it: `--mixed_precision=bfloat16`,
# bfloat16 weights (LayerNorm/softmax in float32), no per-call weight casts.
EXPORT_POLICY = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
LABELS = ["negative", "positive"]
IMPL_NAMES = {
    "bert_tf": "bert_tf SavedModel (serving_default)",
    "torch": "HF BertTokenizerFast + BertForSequenceClassification",
    "keras_hub": "keras-hub BertTextClassifierPreprocessor + BertTextClassifier",
    "tflite": "bert_tf TFLite (Runner)",
}


def forward_flops(cfg: dict, seq: int, num_classes: int = len(LABELS)) -> float:
    """Matmul FLOPs of one sequence's forward pass: projections, QKᵀ and AV, pooler, head."""
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    per_token_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq * h
    return seq * layers * per_token_layer + 2 * h * h + 2 * h * num_classes


def make_texts(lines: list[str], count: int, min_chars: int) -> list[str]:
    """Consecutive corpus lines joined into `count` texts of at least `min_chars` characters."""
    texts, current = [], []
    for line in lines * (1 + count * min_chars // max(1, sum(map(len, lines)))):
        current.append(line)
        if sum(map(len, current)) + len(current) - 1 >= min_chars:
            texts.append(" ".join(current))
            current = []
            if len(texts) == count:
                break
    return texts


# ----------------------------------------------------------------------------- timing
def measure(predict, texts: list[str], batch_size: int, requests: int, batches: int,
            repeats: int, warmup: int) -> dict:
    """Latencies (ms) of batch-1 calls and sequences/s of `batches` batches, per repeat."""
    n = len(texts)
    for i in range(warmup):
        predict(texts[i % n:i % n + 1])
    if batches:
        predict(texts[:batch_size])
    latency, throughput, k = [], [], warmup
    for _ in range(repeats):
        times = []
        for _ in range(requests):
            text = texts[k % n]
            k += 1
            start = time.perf_counter()
            predict([text])
            times.append((time.perf_counter() - start) * 1e3)
        latency.append(times)
        if batches:
            chunks = []
            for _ in range(batches):
                chunks.append([texts[(k + j) % n] for j in range(batch_size)])
                k += batch_size
            start = time.perf_counter()
            for chunk in chunks:
                predict(chunk)
            throughput.append(batch_size * batches / (time.perf_counter() - start))
    return {"latency_ms": latency, "throughput": throughput}


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


# ----------------------------------------------------------------------------- workers
def _spec(cfg_path: str, vocab_file: str, precision: str):
    from bert_tf.serving.export import ExportSpec

    return ExportSpec.from_files("classifier", cfg_path, vocab_file,
                                 do_lower_case=FLAGS.do_lower_case,
                                 max_seq_length=FLAGS.seq_length, labels=LABELS,
                                 dtype_policy=EXPORT_POLICY[precision])


def _saved_model_dir(work: str, precision: str) -> str:
    return os.path.join(work, "saved_model", precision, "1")


def _tflite_path(work: str, quantize: str) -> str:
    return os.path.join(work, "tflite", f"classifier_{quantize}.tflite")


def _export_bert_tf(work: str, vocab_file: str, precision: str) -> dict:
    import keras

    from bert_tf.serving.export import export_saved_model

    keras.utils.set_random_seed(0)
    spec = _spec(FLAGS.config, vocab_file, precision)
    model = spec.build_model()
    start = time.perf_counter()
    path = export_saved_model(spec.serving_module(model), spec,
                              os.path.join(work, "saved_model"), precision, version=1,
                              overwrite=True)
    assert path == _saved_model_dir(work, precision), path
    return {"export_s": time.perf_counter() - start}


def _convert_tflite(work: str, quantize: str) -> dict:
    try:
        from bert_tf.serving import tflite
    except ImportError:
        return {"skip": "bert_tf.serving.tflite not available"}
    from bert_tf.serving.export import load_exported

    spec, model = load_exported(_saved_model_dir(work, "float32"))
    path = _tflite_path(work, quantize)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    start = time.perf_counter()
    tflite.export_tflite(spec, model, path, quantize, overwrite=True)
    return {"convert_s": time.perf_counter() - start, "file_mb": os.path.getsize(path) / 1e6}


def _predict_bert_tf(work: str, precision: str, texts: list[str]):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tf-text ops of the graph)

    path = _saved_model_dir(work, precision)
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]

    def predict(batch):
        out = serve(text=tf.constant(batch))
        return {k: v.numpy() for k, v in out.items()}

    # How full the sequences are (same tokenizer rules for every implementation).
    from bert_tf.serving.export import read_export_metadata
    from bert_tf.text import BertPreprocessor, load_vocab

    meta = read_export_metadata(path)
    pre = BertPreprocessor(load_vocab(os.path.join(path, "assets", "vocab.txt")),
                           do_lower_case=meta["do_lower_case"], seq_length=meta["max_seq_length"])
    mask = pre(tf.constant(texts))["input_mask"].numpy()
    info = {"mean_tokens": float(mask.sum(1).mean()), "full_fraction": float(mask[:, -1].mean())}
    return predict, info


def _predict_torch(cfg: dict, vocab_file: str, precision: str):
    try:
        import torch
        import transformers
    except ImportError as e:
        return None, {"skip": f"torch/transformers not installed ({e.name}): "
                              "pip install -e '.[bench]'"}
    import inspect

    from transformers import BertConfig as HFConfig, BertForSequenceClassification
    from transformers import BertTokenizerFast

    # transformers 5 takes the vocab file as `vocab` (a `vocab_file` keyword is ignored there).
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters \
        else "vocab_file"
    tokenizer = BertTokenizerFast(**{key: vocab_file}, do_lower_case=FLAGS.do_lower_case)
    with open(vocab_file, encoding="utf-8") as f:
        cls_id = [line.rstrip("\n") for line in f].index("[CLS]")
    if tokenizer.cls_token_id != cls_id:
        raise RuntimeError(f"BertTokenizerFast did not load {vocab_file}")
    if FLAGS.torch_threads:
        torch.set_num_threads(FLAGS.torch_threads)
    torch.manual_seed(0)
    hf = HFConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  num_hidden_layers=cfg["num_hidden_layers"],
                  num_attention_heads=cfg["num_attention_heads"],
                  intermediate_size=cfg["intermediate_size"], hidden_act="gelu_new",
                  max_position_embeddings=cfg["max_position_embeddings"],
                  type_vocab_size=cfg["type_vocab_size"], layer_norm_eps=1e-12,
                  num_labels=len(LABELS))
    model = BertForSequenceClassification(hf).eval()
    bf16 = precision == "mixed_bfloat16"

    def predict(batch):
        enc = tokenizer(batch, padding="max_length", truncation=True,
                        max_length=FLAGS.seq_length, return_tensors="pt")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**enc).logits.float()
        probabilities = torch.softmax(logits, -1)
        return {"probabilities": probabilities.numpy(), "logits": logits.numpy(),
                "label": [LABELS[i] for i in probabilities.argmax(-1).tolist()]}

    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    return predict, info


def _predict_keras_hub(cfg: dict, vocab_file: str, precision: str):
    import keras
    import keras_hub
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    with open(vocab_file, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=FLAGS.do_lower_case)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=FLAGS.seq_length)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=cfg["vocab_size"], num_layers=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"], hidden_dim=cfg["hidden_size"],
        intermediate_dim=cfg["intermediate_size"],
        max_sequence_length=cfg["max_position_embeddings"], num_segments=cfg["type_vocab_size"])
    classifier = keras_hub.models.BertTextClassifier(backbone, num_classes=len(LABELS))
    label_table = tf.constant(LABELS)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(text):
        logits = tf.cast(classifier(preprocessor(text), training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits, -1), "logits": logits,
                "label": tf.gather(label_table, tf.argmax(logits, -1))}

    def predict(batch):
        return {k: v.numpy() for k, v in serve(tf.constant(batch)).items()}

    return predict, {"keras_hub": keras_hub.__version__}


def _predict_tflite(work: str, quantize: str):
    try:
        from bert_tf.serving import tflite
    except ImportError:
        return None, {"skip": "bert_tf.serving.tflite not available"}
    path = _tflite_path(work, quantize)
    runner = tflite.Runner(path, num_threads=os.cpu_count())
    return runner.predict, {"file_mb": os.path.getsize(path) / 1e6, "threads": os.cpu_count()}


def _run_worker(spec: str) -> None:
    step, impl, precision = spec.split(":")
    work = FLAGS.work_dir
    vocab_file = os.path.join(work, "vocab.txt")
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    if step == "export":
        result = _export_bert_tf(work, vocab_file, precision) if impl == "bert_tf" \
            else _convert_tflite(work, precision)
        print("RESULT " + json.dumps(result), flush=True)
        return
    with open(os.path.join(work, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    if impl == "bert_tf":
        predict, info = _predict_bert_tf(work, precision, texts)
    elif impl == "torch":
        predict, info = _predict_torch(cfg, vocab_file, precision)
    elif impl == "keras_hub":
        predict, info = _predict_keras_hub(cfg, vocab_file, precision)
    else:
        predict, info = _predict_tflite(work, precision)
    if predict is None:
        print("RESULT " + json.dumps(info), flush=True)
        return
    out = predict(texts[:2])
    labels = list(out["label"])
    if len(labels) != 2 or tuple(out["probabilities"].shape) != (2, len(LABELS)):
        raise RuntimeError(f"{impl}: unexpected outputs {out}")
    batches = 0 if impl == "tflite" else FLAGS.throughput_batches  # TFLite: batch 1 only
    result = measure(predict, texts, FLAGS.batch_size, FLAGS.latency_requests, batches,
                     FLAGS.repeats, FLAGS.warmup)
    print("RESULT " + json.dumps(dict(result, info=info)), flush=True)


# ----------------------------------------------------------------------------- driver
def _subprocess(step: str, work: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), f"--worker={step}", f"--work_dir={work}"]
    for name in ("config", "seq_length", "batch_size", "latency_requests", "throughput_batches",
                 "warmup", "repeats", "do_lower_case", "torch_threads"):
        cmd.append(f"--{name}={getattr(FLAGS, name)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        tail = next((line for line in reversed(err) if "Error" in line or "error" in line),
                    err[-1] if err else "(no output)")
        return {"error": tail.strip()[:200]}
    return json.loads(lines[-1][len("RESULT "):])


def _prepare(work: str) -> tuple[str, list[str]]:
    """Writes work/vocab.txt and work/texts.json; returns a description of the vocab and the texts."""
    from corpus import stdlib_docstring_lines
    from report import shared_vocab_file

    lines = stdlib_docstring_lines()
    vocab_file = FLAGS.vocab_file or shared_vocab_file()
    target = os.path.join(work, "vocab.txt")
    if vocab_file:
        shutil.copyfile(vocab_file, target)
        with open(target, encoding="utf-8") as f:
            described = f"{vocab_file} ({sum(1 for _ in f):,} tokens)"
    else:
        from bert_tf.text.build_vocab import count_words, learn_vocab

        with open(FLAGS.config) as fh:
            size = json.load(fh)["vocab_size"]
        tokens = learn_vocab(count_words(lines, FLAGS.do_lower_case), vocab_size=size)
        with open(target, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in tokens))
        described = f"learned from the corpus by bert_tf.text.build_vocab ({len(tokens):,} tokens)"
    texts = make_texts(lines, FLAGS.num_texts, FLAGS.min_chars)
    with open(os.path.join(work, "texts.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f)
    return described, texts


def _summary(result: dict | None) -> dict | None:
    if not result or "latency_ms" not in result:
        return None
    p50 = [percentile(t, 50) for t in result["latency_ms"]]
    p99 = [percentile(t, 99) for t in result["latency_ms"]]
    return {"p50": p50, "p99": p99, "throughput": result["throughput"]}


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    seq, batch = FLAGS.seq_length, FLAGS.batch_size
    flops = forward_flops(cfg, seq)
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_serving_")
    os.makedirs(work, exist_ok=True)
    try:
        vocab_desc, texts = _prepare(work)
        print(f"config {os.path.basename(FLAGS.config)}: L{cfg['num_hidden_layers']} "
              f"H{cfg['hidden_size']}; seq {seq}; {flops / 1e9:.2f} GFLOP per sequence forward; "
              f"vocab {vocab_desc}; {len(texts)} texts of ≥ {FLAGS.min_chars} chars; latency: "
              f"{FLAGS.latency_requests} batch-1 requests, throughput: "
              f"{FLAGS.throughput_batches} batches of {batch}; {FLAGS.repeats} repeats; "
              f"{os.cpu_count()} CPUs", flush=True)
        runs: list[tuple[str, str]] = []
        for precision in FLAGS.precisions:
            runs += [(impl, precision) for impl in FLAGS.impls if impl != "tflite"]
        if "tflite" in FLAGS.impls:
            runs += [("tflite", q) for q in FLAGS.tflite_quantize]
        exports: dict[tuple[str, str], dict] = {}
        results: dict[tuple[str, str], dict] = {}
        for impl, precision in runs:
            # bert_tf needs its export; TFLite converts the float32 export.
            prereq = {"bert_tf": [("bert_tf", precision)],
                      "tflite": [("bert_tf", "float32"), ("tflite", precision)]}.get(impl, [])
            failed = None
            for key in prereq:
                if key not in exports:
                    exports[key] = _subprocess(f"export:{key[0]}:{key[1]}", work)
                if "error" in exports[key] or "skip" in exports[key]:
                    failed = exports[key]
                    break
            result = failed or _subprocess(f"time:{impl}:{precision}", work)
            results[(impl, precision)] = result
            if "skip" in result:
                print(f"  {impl} {precision}: skipped: {result['skip']}", flush=True)
            elif "error" in result:
                print(f"  {impl} {precision}: not measured ({result['error']})", flush=True)
            elif impl == "bert_tf" and precision == FLAGS.precisions[0]:
                info = result["info"]
                print(f"  texts: {info['mean_tokens']:.1f} tokens on average, "
                      f"{info['full_fraction']:.0%} fill all {seq}", flush=True)
        _print_table(results, exports, flops, batch)
        if FLAGS.json_output:
            _write_json(results, exports, flops, cfg, vocab_desc)
    finally:
        if not FLAGS.work_dir:
            shutil.rmtree(work, ignore_errors=True)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _print_table(results, exports, flops: float, batch: int) -> None:
    print()
    print(f"| implementation | precision | p50 ms | p99 ms | bert_tf speed-up (p50) | "
          f"batch-{batch} seq/s | bert_tf speed-up (seq/s) | MFU at batch {batch} | file MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (impl, precision), result in results.items():
        s = _summary(result)
        ours = _summary(results.get(("bert_tf", "float32" if impl == "tflite" else precision)))
        label = f"quantize={precision}" if impl == "tflite" else precision
        if s is None:
            why = "skipped" if "skip" in (result or {}) else "not measured"
            print(f"| {IMPL_NAMES[impl]} | {label} | {why} | — | — | — | — | — | — |")
            continue
        p50, p99 = statistics.median(s["p50"]), statistics.median(s["p99"])
        rate = statistics.median(s["throughput"]) if s["throughput"] else None
        lat_ratio = statistics.median(s["p50"]) / statistics.median(ours["p50"]) if ours else None
        rate_ratio = (statistics.median(ours["throughput"]) / rate
                      if ours and rate and ours["throughput"] else None)
        peak = PEAK_FLOPS.get(precision)
        mfu = rate * flops / peak if rate and peak else None
        size = exports.get((impl, precision), {}).get("file_mb") if impl == "tflite" else None
        print(f"| {IMPL_NAMES[impl]} | {label} | {p50:.1f} | {p99:.1f} | "
              f"{_fmt(lat_ratio, '.2f') + '×' if lat_ratio else '—'} | {_fmt(rate, '.2f')} | "
              f"{_fmt(rate_ratio, '.2f') + '×' if rate_ratio else '—'} | "
              f"{_fmt(mfu and mfu * 100, '.1f') + '%' if mfu else '—'} | {_fmt(size, '.1f')} |")
    print("\n(medians over repeats; bert_tf speed-up = this ÷ bert_tf for latency, bert_tf ÷ this "
          "for seq/s, > 1 when bert_tf is faster; TFLite is compared with bert_tf float32)")


def _write_json(results, exports, flops: float, cfg: dict, vocab_desc: str) -> None:
    from report import result_row, write_results

    rows = []
    for (impl, precision), result in results.items():
        s = _summary(result)
        tflite = impl == "tflite"
        group = "float32" if tflite else precision
        name = IMPL_NAMES[impl] + (f", quantize={precision}" if tflite else "")
        common = dict(group=group, ours=impl == "bert_tf",
                      note=(result or {}).get("skip") or (result or {}).get("error"))
        if s is None:
            rows.append(result_row(name, "latency p50", "ms", [], better="lower", **common))
            continue
        rows.append(result_row(name, "latency p50", "ms", s["p50"], better="lower", **common))
        rows.append(result_row(name, "latency p99", "ms", s["p99"], better="lower", **common))
        if s["throughput"]:
            rows.append(result_row(name, f"throughput at batch {FLAGS.batch_size}",
                                   "sequences/s", s["throughput"], better="higher",
                                   flops_per_item=flops, peak_flops=PEAK_FLOPS.get(precision),
                                   **common))
        if tflite and "file_mb" in exports.get((impl, precision), {}):
            rows.append(result_row(name, "file size", "MB", [exports[(impl, precision)]["file_mb"]],
                                   better=None, **common))
    info = {"vocab": vocab_desc, "forward_gflop_per_sequence": flops / 1e9,
            "exports": {f"{i}:{p}": v for (i, p), v in exports.items()},
            "workers": {f"{i}:{p}": (r or {}).get("info") for (i, p), r in results.items()}}
    write_results(FLAGS.json_output, "serving", rows, info=info,
                  description=f"{os.path.basename(FLAGS.config)} (L{cfg['num_hidden_layers']} "
                              f"H{cfg['hidden_size']}), strings in → class probabilities out, "
                              f"seq {FLAGS.seq_length}; latency: {FLAGS.latency_requests} "
                              f"batch-1 requests per repeat; throughput: "
                              f"{FLAGS.throughput_batches} batches of {FLAGS.batch_size}; "
                              f"vocab {vocab_desc}")


if __name__ == "__main__":
    app.run(main)
