"""Serving latency and throughput: strings in → classifier outputs, bert_tf vs peers, one run.

    .venv/bin/python bench/serving.py [--config=configs/bert_base.json] [--seq_length=128]
        [--batch_size=32] [--latency_requests=40] [--repeats=3]
        [--datasets=sst2,mrpc,docstrings] [--impls=bert_tf,torch,keras_hub,tflite]
        [--precisions=float32,mixed_bfloat16]

Every implementation gets raw strings and returns class probabilities (a 2-class classifier with
random weights: only speed is measured), tokenization included, in this process's Python:
  * bert_tf: the classifier exported by `bert_tf.serving.export` (string signature, tf-text
    tokenization inside the graph, each batch packed to its longest text rounded up to a
    multiple of 16: the export's default `bucket_size`), loaded back with `tf.saved_model.load`
    and called through `signatures["serving_default"]` (`text_pair` for pairs); the bf16 row (`mixed_bfloat16`) is exported with
    `dtype_policy="bfloat16"` (bfloat16 weights, LayerNorm and softmax in float32), the
    recommended serving setting;
  * bert_tf_fixed (not in the default --impls): the same export with `bucket_size=None`, every
    batch packed to --seq_length: what the buckets save;
  * torch: Hugging Face `BertTokenizerFast` (Rust, from the same vocab.txt) with
    `padding="longest"` (the pipelines' and `Trainer`'s default: each batch padded to its longest
    text) + `BertForSequenceClassification` (same config) in eval mode under `torch.inference_mode`,
    bf16 via `torch.autocast("cpu")` (needs `pip install -e '.[bench]'`; skipped without torch);
  * keras_hub: `BertTextClassifierPreprocessor` (its `BertTokenizer` built from the vocab list) +
    `BertTextClassifier` (a `BertBackbone` with a Dense head on the pooled output), the two
    called in one `tf.function` over a string batch; mixed_bfloat16 via the global Keras policy;
  * tflite: the same exported classifier converted by `bert_tf.serving.tflite` (string input,
    in-graph tokenization, batch 1 only) with --tflite_quantize none / float16 / dynamic_int8,
    run by its `Runner`: batch-1 latency and file size.

Each (implementation, precision) runs in its own subprocess of this script, back to back on the
same texts, after warm-up calls, over each of --datasets in turn: `sst2` (GLUE SST-2 dev
sentences), `mrpc` (GLUE MRPC dev pairs, through the pair signature/API of each implementation),
both real text from ../shared/data with a same-length fallback (bench/real_text.py), and
`docstrings`: consecutive docstring lines of Python's standard library (bench/corpus.py) joined
to ≥ --min_chars characters, so most fill --seq_length tokens (the fixed-shape forward). The
vocab is --vocab_file (default: Google's uncased vocab from ../shared/data when present,
else a WordPiece vocab learned from the same corpus by bert_tf.text.build_vocab).

Latency: --latency_requests requests of one text per repeat, p50 and p99 of them (ms). Throughput:
--throughput_batches batches of --batch_size texts per repeat (sequences/s). The table shows the
median over --repeats (and the best), the speed-up of bert_tf over each peer at the same dataset
and precision (TFLite: against bert_tf float32), and the model FLOPs utilisation at --batch_size:
the useful forward matmul FLOPs (each text at its own packed length, padding not counted; ≈ 22.4
GFLOP for BERT-base at 128 tokens) against the CPU's nominal peak (bench/report.py, which adds
the MFU against the peak bench/peak.py measures).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The checkout's bert_tf, not whichever one the interpreter has installed.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_common_flags(impls: list[str], batch_size: int, latency_requests: int,
                        throughput_batches: int, warmup: int, items: str = "texts",
                        impls_help: str = "Implementations to measure.") -> None:
    """The flags every serving benchmark has (this one, bench/serving_ner.py through it and
    bench/serving_qa.py), with the script's defaults; `items` names what is served."""
    flags.DEFINE_string("config", os.path.join(REPO, "configs", "bert_base.json"),
                        "bert_config.json")
    flags.DEFINE_integer("batch_size", batch_size,
                         f"{items.capitalize()} per call in the throughput measurement.")
    flags.DEFINE_integer("latency_requests", latency_requests,
                         "Batch-1 requests per repeat (after warm-up).")
    flags.DEFINE_integer("throughput_batches", throughput_batches,
                         "Batches of --batch_size per repeat.")
    flags.DEFINE_integer("warmup", warmup, "Untimed batch-1 calls (plus one full batch) before "
                         f"timing, on {items} spread from the shortest to the longest.")
    flags.DEFINE_integer("repeats", 3,
                         "Timed repeats per implementation (latency and throughput).")
    flags.DEFINE_list("impls", impls, impls_help)
    flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
    flags.DEFINE_integer("torch_threads", 0, "torch.set_num_threads for the PyTorch peer (0: "
                         "torch's default, one per core). Its OpenMP threads wait badly when "
                         "other processes load the cores: compare with 1 on a busy machine.")
    flags.DEFINE_string("vocab_file", None, "vocab.txt (default: Google's uncased vocab from "
                        "../shared/data when present, else one learned from stdlib docstrings).")
    flags.DEFINE_bool("do_lower_case", True, "Uncased tokenization.")
    flags.DEFINE_string("work_dir", None, f"Where the vocab, {items} and exported models go "
                        "(default: a temporary directory, removed afterwards).")
    flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                        "format) to this path.")
    flags.DEFINE_string("worker", None, "(internal) step:impl:precision to run in this process.")


def define_flags() -> None:
    """This script's flags, defined only when it runs: `import serving` has no side effect, so
    the other serving benchmarks reuse its helpers."""
    define_common_flags(["bert_tf", "torch", "keras_hub", "tflite"], batch_size=32,
                        latency_requests=40, throughput_batches=3, warmup=10,
                        impls_help="Implementations to measure (also: bert_tf_fixed).")
    flags.DEFINE_integer("seq_length", 128,
                         "Packed sequence length (max_seq_length of the export).")
    flags.DEFINE_list("datasets", ["sst2", "mrpc", "docstrings"],
                      "Texts to serve: sst2 (sentences), mrpc (pairs), docstrings (long texts).")
    flags.DEFINE_list("tflite_quantize", ["none", "float16", "dynamic_int8"],
                      "TFLite conversions to measure (the `quantize` of bert_tf.serving.tflite).")
    flags.DEFINE_integer("num_texts", 512, "Distinct texts (requests cycle through them).")
    flags.DEFINE_integer("min_chars", 600, "Docstring lines are joined until a text has this "
                         "many characters.")


FLAGS = flags.FLAGS

# Nominal peaks; bench/report.py adds the MFU against the peak bench/peak.py measures.
from report import NOMINAL_PEAK_FLOPS as PEAK_FLOPS  # noqa: E402
# bert_tf's bf16 SavedModel is exported as users should serve it: `--mixed_precision=bfloat16`,
# bfloat16 weights (LayerNorm/softmax in float32), no per-call weight casts.
EXPORT_POLICY = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
LABELS = ["negative", "positive"]
IMPL_NAMES = {
    "bert_tf": "bert_tf SavedModel (bucketed length)",
    "bert_tf_fixed": "bert_tf SavedModel (fixed length)",
    "torch": "HF BertTokenizerFast (padding=longest) + BertForSequenceClassification",
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
def measure(predict, items: list[tuple[str, ...]], batch_size: int, requests: int, batches: int,
            repeats: int, warmup: int, units=None) -> dict:
    """Latencies (ms) of batch-1 calls and sequences/s of `batches` batches, per repeat. `items`
    are (text,) or (text_a, text_b); `predict` takes a list of them. With `units` (a function of
    a batch: how much work it is, e.g. its model inputs), also `unit_throughput`: units/s."""
    n = len(items)
    # Warm-up texts spread from the shortest to the longest, so that shape-keyed caches (oneDNN
    # primitives per bucket length, torch's per padded length) are warm before timing.
    by_length = sorted(range(n), key=lambda i: sum(map(len, items[i])))
    for j in range(warmup):
        i = by_length[j * (n - 1) // max(1, warmup - 1)]
        predict(items[i:i + 1])
    if batches:
        predict(items[:batch_size])
    latency, throughput, unit_rates, k = [], [], [], warmup
    for _ in range(repeats):
        times = []
        for _ in range(requests):
            item = items[k % n]
            k += 1
            start = time.perf_counter()
            predict([item])
            times.append((time.perf_counter() - start) * 1e3)
        latency.append(times)
        if batches:
            chunks = []
            for _ in range(batches):
                chunks.append([items[(k + j) % n] for j in range(batch_size)])
                k += batch_size
            start = time.perf_counter()
            for chunk in chunks:
                predict(chunk)
            seconds = time.perf_counter() - start
            throughput.append(batch_size * batches / seconds)
            if units:
                unit_rates.append(sum(units(chunk) for chunk in chunks) / seconds)
    out = {"latency_ms": latency, "throughput": throughput}
    if units:
        out["unit_throughput"] = unit_rates
    return out


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def _columns(batch: list[tuple[str, ...]]) -> list[list[str]]:
    """[texts] or [texts_a, texts_b] of a batch of items."""
    return [list(column) for column in zip(*batch)]


# ----------------------------------------------------------------------------- workers
def _spec(cfg_path: str, vocab_file: str, impl: str, precision: str):
    from bert_tf.serving.export import DEFAULT_BUCKET_SIZE, ExportSpec

    return ExportSpec.from_files("classifier", cfg_path, vocab_file,
                                 do_lower_case=FLAGS.do_lower_case,
                                 max_seq_length=FLAGS.seq_length, labels=LABELS,
                                 dtype_policy=EXPORT_POLICY[precision],
                                 bucket_size=None if impl == "bert_tf_fixed"
                                 else DEFAULT_BUCKET_SIZE)


def _saved_model_dir(work: str, impl: str, precision: str) -> str:
    return os.path.join(work, "saved_model", f"{impl}_{precision}", "1")


def _tflite_path(work: str, quantize: str) -> str:
    return os.path.join(work, "tflite", f"classifier_{quantize}.tflite")


def _export_bert_tf(work: str, vocab_file: str, impl: str, precision: str) -> dict:
    import keras

    from bert_tf.serving.export import export_saved_model

    keras.utils.set_random_seed(0)
    spec = _spec(FLAGS.config, vocab_file, impl, precision)
    model = spec.build_model()
    start = time.perf_counter()
    path = export_saved_model(spec.serving_module(model), spec,
                              os.path.join(work, "saved_model"), f"{impl}_{precision}",
                              version=1, overwrite=True)
    assert path == _saved_model_dir(work, impl, precision), path
    return {"export_s": time.perf_counter() - start}


def _convert_tflite(work: str, quantize: str) -> dict:
    try:
        from bert_tf.serving import tflite
    except ImportError:
        return {"skip": "bert_tf.serving.tflite not available"}
    from bert_tf.serving.export import load_exported

    spec, model = load_exported(_saved_model_dir(work, "bert_tf", "float32"))
    path = _tflite_path(work, quantize)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    start = time.perf_counter()
    tflite.export_tflite(spec, model, path, quantize, overwrite=True)
    return {"convert_s": time.perf_counter() - start, "file_mb": os.path.getsize(path) / 1e6}


def _length_info(path: str, cfg: dict, datasets: dict) -> dict:
    """Per dataset: mean packed length, share of texts that fill --seq_length and the useful
    forward FLOPs per item (each at its own packed length), with bert_tf's tokenizer."""
    import numpy as np
    import tensorflow as tf

    from bert_tf.serving.export import read_export_metadata
    from bert_tf.text import BertPreprocessor, load_vocab

    meta = read_export_metadata(path)
    pre = BertPreprocessor(load_vocab(os.path.join(path, "assets", "vocab.txt")),
                           do_lower_case=meta["do_lower_case"], seq_length=meta["max_seq_length"])
    out = {}
    for name, items in datasets.items():
        columns = [tf.constant(c) for c in _columns(items)]
        mask = pre(columns[0] if len(columns) == 1 else tuple(columns))["input_mask"].numpy()
        lengths = mask.sum(1)
        out[name] = {"mean_tokens": float(lengths.mean()),
                     "full_fraction": float(mask[:, -1].mean()),
                     "flops_per_item": float(np.mean([forward_flops(cfg, int(n))
                                                      for n in lengths]))}
    return out


def _predict_bert_tf(work: str, impl: str, precision: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tf-text ops of the graph)

    signatures = tf.saved_model.load(_saved_model_dir(work, impl, precision)).signatures

    def predict(batch):
        columns = _columns(batch)
        if len(columns) == 1:
            out = signatures["serving_default"](text=tf.constant(columns[0]))
        else:
            out = signatures["text_pair"](text=tf.constant(columns[0]),
                                          text_b=tf.constant(columns[1]))
        return {k: v.numpy() for k, v in out.items()}

    return predict, {}


def torch_skip() -> dict | None:
    """{"skip": why} when torch or transformers (the `bench` extra) is missing, else None."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return {"skip": f"torch/transformers not installed ({e.name}): pip install -e '.[bench]'"}
    return None


def hf_tokenizer(vocab_file: str, do_lower_case: bool):
    """Hugging Face's `BertTokenizerFast` (Rust) on `vocab_file`, checked to have loaded it."""
    import inspect

    from transformers import BertTokenizerFast

    # transformers 5 takes the vocab file as `vocab` (a `vocab_file` keyword is ignored there).
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters \
        else "vocab_file"
    tokenizer = BertTokenizerFast(**{key: vocab_file}, do_lower_case=do_lower_case)
    with open(vocab_file, encoding="utf-8") as f:
        cls_id = [line.rstrip("\n") for line in f].index("[CLS]")
    if tokenizer.cls_token_id != cls_id:
        raise RuntimeError(f"BertTokenizerFast did not load {vocab_file}")
    return tokenizer


def hf_config(cfg: dict, **kwargs):
    """The `transformers.BertConfig` of a bert_config.json dict (Google's tanh GELU)."""
    from transformers import BertConfig as HFConfig

    return HFConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                    num_hidden_layers=cfg["num_hidden_layers"],
                    num_attention_heads=cfg["num_attention_heads"],
                    intermediate_size=cfg["intermediate_size"], hidden_act="gelu_new",
                    max_position_embeddings=cfg["max_position_embeddings"],
                    type_vocab_size=cfg["type_vocab_size"], layer_norm_eps=1e-12, **kwargs)


def hf_peer(model_class: str, cfg: dict, vocab_file: str, do_lower_case: bool,
            torch_threads: int = 0, **config_kwargs):
    """(tokenizer, model, info) of a Hugging Face peer: `hf_tokenizer`, `transformers.<model_class>`
    on `hf_config(cfg, **config_kwargs)` with seeded random weights in eval mode, and the versions
    and threads; (None, None, {"skip": why}) without torch/transformers."""
    skip = torch_skip()
    if skip:
        return None, None, skip
    import torch
    import transformers

    tokenizer = hf_tokenizer(vocab_file, do_lower_case)
    if torch_threads:
        torch.set_num_threads(torch_threads)
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(hf_config(cfg, **config_kwargs)).eval()
    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    return tokenizer, model, info


def _predict_torch(cfg: dict, vocab_file: str, precision: str):
    tokenizer, model, info = hf_peer("BertForSequenceClassification", cfg, vocab_file,
                                     FLAGS.do_lower_case, FLAGS.torch_threads,
                                     num_labels=len(LABELS))
    if model is None:
        return None, info
    import torch

    bf16 = precision == "mixed_bfloat16"

    def predict(batch):
        # padding="longest": HF's pipelines and Trainer pad each batch to its longest text.
        enc = tokenizer(*_columns(batch), padding="longest", truncation=True,
                        max_length=FLAGS.seq_length, return_tensors="pt")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**enc).logits.float()
        probabilities = torch.softmax(logits, -1)
        return {"probabilities": probabilities.numpy(), "logits": logits.numpy(),
                "label": [LABELS[i] for i in probabilities.argmax(-1).tolist()]}

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

    def outputs(inputs):
        logits = tf.cast(classifier(inputs, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits, -1), "logits": logits,
                "label": tf.gather(label_table, tf.argmax(logits, -1))}

    text = tf.TensorSpec([None], tf.string)
    serve = tf.function(lambda a: outputs(preprocessor(a)), input_signature=[text])
    # A tuple as the first positional argument would be read as (x, y): pass pairs as x=.
    serve_pair = tf.function(lambda a, b: outputs(preprocessor(x=(a, b))),
                             input_signature=[text, text])

    def predict(batch):
        columns = [tf.constant(c) for c in _columns(batch)]
        out = serve(*columns) if len(columns) == 1 else serve_pair(*columns)
        return {k: v.numpy() for k, v in out.items()}

    return predict, {"keras_hub": keras_hub.__version__}


def _predict_tflite(work: str, quantize: str):
    try:
        from bert_tf.serving import tflite
    except ImportError:
        return None, {"skip": "bert_tf.serving.tflite not available"}
    path = _tflite_path(work, quantize)
    runner = tflite.Runner(path, num_threads=os.cpu_count())

    def predict(batch):
        return runner.predict(*_columns(batch))

    return predict, {"file_mb": os.path.getsize(path) / 1e6, "threads": os.cpu_count()}


def _run_worker(spec: str) -> None:
    step, impl, precision = spec.split(":")
    work = FLAGS.work_dir
    vocab_file = os.path.join(work, "vocab.txt")
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    if step == "export":
        result = _convert_tflite(work, precision) if impl == "tflite" \
            else _export_bert_tf(work, vocab_file, impl, precision)
        print("RESULT " + json.dumps(result), flush=True)
        return
    datasets = load_texts(work)
    if impl.startswith("bert_tf"):
        predict, info = _predict_bert_tf(work, impl, precision)
        info["datasets"] = _length_info(_saved_model_dir(work, impl, precision), cfg, datasets)
    elif impl == "torch":
        predict, info = _predict_torch(cfg, vocab_file, precision)
    elif impl == "keras_hub":
        predict, info = _predict_keras_hub(cfg, vocab_file, precision)
    else:
        predict, info = _predict_tflite(work, precision)
    if predict is None:
        print("RESULT " + json.dumps(info), flush=True)
        return
    results = {}
    for name, items in datasets.items():
        out = predict(items[:2])
        if len(list(out["label"])) != 2 or tuple(out["probabilities"].shape) != (2, len(LABELS)):
            raise RuntimeError(f"{impl} on {name}: unexpected outputs {out}")
        batches = 0 if impl == "tflite" else FLAGS.throughput_batches  # TFLite: batch 1 only
        results[name] = measure(predict, items, FLAGS.batch_size, FLAGS.latency_requests,
                                batches, FLAGS.repeats, FLAGS.warmup)
    print("RESULT " + json.dumps({"datasets": results, "info": info}), flush=True)


def load_texts(work: str) -> dict[str, list[tuple[str, ...]]]:
    """{dataset: items} from the work/texts.json `_prepare` wrote."""
    with open(os.path.join(work, "texts.json"), encoding="utf-8") as f:
        return {name: [tuple(item) for item in items]
                for name, items in json.load(f)["items"].items()}


# ----------------------------------------------------------------------------- driver
# The flags a worker of this script (or of bench/serving_ner.py, which shares them) is given.
WORKER_FLAGS = ("config", "seq_length", "batch_size", "latency_requests", "throughput_batches",
                "warmup", "repeats", "do_lower_case", "torch_threads")


def _subprocess(step: str, work: str, script: str = __file__) -> dict:
    """`worker_result` of `script` with this file's WORKER_FLAGS."""
    return worker_result(script, step, work, {name: getattr(FLAGS, name) for name in WORKER_FLAGS})


def worker_result(script: str, step: str, work: str, flag_values: dict) -> dict:
    """Runs `script --worker=step --work_dir=work` with `flag_values` ({name: value}) in a fresh
    process; returns its last `RESULT <json>` line, or {"error": the telling line}."""
    cmd = [sys.executable, os.path.abspath(script), f"--worker={step}", f"--work_dir={work}"]
    cmd += [f"--{name}={value}" for name, value in flag_values.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": error_line(proc.stderr)}
    return json.loads(lines[-1][len("RESULT "):])


def error_line(stderr: str) -> str:
    """The line of a failed process's stderr that says why (the last naming an error)."""
    err = [line for line in stderr.strip().splitlines() if line.strip()]
    tail = next((line for line in reversed(err) if "Error" in line or "error" in line),
                err[-1] if err else "(no output)")
    return tail.strip()[:200]


def prepare_vocab(target: str, vocab_file: str | None, config_file: str,
                  do_lower_case: bool) -> str:
    """Writes the benchmark's vocab to `target`: `vocab_file`, else Google's uncased vocab from
    ../shared/data, else one learned from the stdlib docstrings; returns its description."""
    from corpus import stdlib_docstring_lines
    from report import shared_vocab_file

    vocab_file = vocab_file or shared_vocab_file()
    if vocab_file:
        shutil.copyfile(vocab_file, target)
        with open(target, encoding="utf-8") as f:
            return f"{vocab_file} ({sum(1 for _ in f):,} tokens)"
    from bert_tf.text.build_vocab import count_words, learn_vocab

    with open(config_file) as fh:
        size = json.load(fh)["vocab_size"]
    tokens = learn_vocab(count_words(stdlib_docstring_lines(), do_lower_case), vocab_size=size)
    with open(target, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in tokens))
    return f"learned from the corpus by bert_tf.text.build_vocab ({len(tokens):,} tokens)"


def _prepare(work: str) -> tuple[str, dict[str, str]]:
    """Writes work/vocab.txt and work/texts.json ({"items": {dataset: [[text(, text_b)], ...]}});
    returns a description of the vocab and of each dataset's texts."""
    from corpus import stdlib_docstring_lines
    from real_text import load

    lines = stdlib_docstring_lines()
    described = prepare_vocab(os.path.join(work, "vocab.txt"), FLAGS.vocab_file, FLAGS.config,
                              FLAGS.do_lower_case)
    items, sources = {}, {}
    for name in FLAGS.datasets:
        if name == "docstrings":
            items[name] = [[t] for t in make_texts(lines, FLAGS.num_texts, FLAGS.min_chars)]
            sources[name] = (f"{len(items[name])} stdlib docstring texts of ≥ {FLAGS.min_chars} "
                             "characters")
        else:
            loaded, _, sources[name] = load(name)
            items[name] = [list(item) for item in loaded]
    with open(os.path.join(work, "texts.json"), "w", encoding="utf-8") as f:
        json.dump({"items": items}, f)
    return described, sources


def summary(result: dict | None, dataset: str) -> dict | None:
    """A worker's `measure` of one dataset as per-repeat p50, p99 (ms), throughput (and
    unit_throughput when measured); None when it was not measured."""
    result = ((result or {}).get("datasets") or {}).get(dataset)
    if not result or "latency_ms" not in result:
        return None
    p50 = [percentile(t, 50) for t in result["latency_ms"]]
    p99 = [percentile(t, 99) for t in result["latency_ms"]]
    return {"p50": p50, "p99": p99, "throughput": result["throughput"],
            "unit_throughput": result.get("unit_throughput", [])}


def _runs() -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for precision in FLAGS.precisions:
        runs += [(impl, precision) for impl in FLAGS.impls if impl != "tflite"]
    if "tflite" in FLAGS.impls:
        runs += [("tflite", q) for q in FLAGS.tflite_quantize]
    return runs


def _prerequisites(impl: str, precision: str) -> list[tuple[str, str]]:
    """Exports an implementation needs: its SavedModel; TFLite converts the float32 export."""
    if impl.startswith("bert_tf"):
        return [(impl, precision)]
    if impl == "tflite":
        return [("bert_tf", "float32"), ("tflite", precision)]
    return []


def _length_infos(results) -> dict:
    """The bert_tf worker's per-dataset lengths and FLOPs (the same for every precision)."""
    for (impl, _), result in results.items():
        datasets = ((result or {}).get("info") or {}).get("datasets")
        if impl.startswith("bert_tf") and datasets:
            return datasets
    return {}


@contextlib.contextmanager
def driver_setup(impls: list[str], names: dict, config_file: str, work_dir: str | None,
                 prefix: str, prepare):
    """A benchmark driver's start: checks `impls` (--impls) against `names`, reads `config_file`
    and makes the work directory (`work_dir`, or a temporary one named `prefix`… removed
    afterwards) with `prepare(work)`'s vocab and inputs; yields (config dict, work directory,
    *what `prepare` returned: the descriptions of the vocab and of the inputs)."""
    unknown = set(impls) - set(names)
    if unknown:
        raise app.UsageError(f"unknown --impls {sorted(unknown)}: expected {sorted(names)}")
    with open(config_file) as fh:
        cfg = json.load(fh)
    work = work_dir or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(work, exist_ok=True)
    try:
        yield (cfg, work, *prepare(work))
    finally:
        if not work_dir:
            shutil.rmtree(work, ignore_errors=True)


def setup_line(config_file: str, cfg: dict, details: str, requests: int, batches: int,
               batch_size: int, repeats: int) -> str:
    """A benchmark's opening line: the config, `details` (lengths, vocab, texts), the timing."""
    return (f"config {os.path.basename(config_file)}: L{cfg['num_hidden_layers']} "
            f"H{cfg['hidden_size']}{details}; latency: {requests} batch-1 requests, throughput: "
            f"{batches} batches of {batch_size}; {repeats} repeats; {os.cpu_count()} CPUs")


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    seq, batch = FLAGS.seq_length, FLAGS.batch_size
    with driver_setup(FLAGS.impls, IMPL_NAMES, FLAGS.config, FLAGS.work_dir, "bench_serving_",
                      _prepare) as (cfg, work, vocab_desc, sources):
        print(setup_line(FLAGS.config, cfg, f"; max seq {seq}; {forward_flops(cfg, seq) / 1e9:.2f} "
                         f"GFLOP per {seq}-token sequence forward; vocab {vocab_desc}; datasets: "
                         f"{'; '.join(f'{k}: {v}' for k, v in sources.items())}",
                         FLAGS.latency_requests, FLAGS.throughput_batches, batch, FLAGS.repeats),
              flush=True)
        exports: dict[tuple[str, str], dict] = {}
        results: dict[tuple[str, str], dict] = {}
        for impl, precision in _runs():
            failed = None
            for key in _prerequisites(impl, precision):
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
        lengths = _length_infos(results)
        for name, info in lengths.items():
            print(f"  {name}: {info['mean_tokens']:.1f} tokens on average, "
                  f"{info['full_fraction']:.0%} fill all {seq}", flush=True)
        _print_table(results, exports, lengths, FLAGS.datasets, batch)
        if FLAGS.json_output:
            _write_json(results, exports, lengths, cfg, vocab_desc, sources)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ours_key(impl: str, precision: str) -> tuple[str, str]:
    return ("bert_tf", "float32" if impl == "tflite" else precision)


def _print_table(results, exports, lengths: dict, datasets: list[str], batch: int,
                 names=None) -> None:
    names = names or IMPL_NAMES
    print()
    print(f"| dataset | implementation | precision | p50 ms | p99 ms | bert_tf speed-up (p50) | "
          f"batch-{batch} seq/s | bert_tf speed-up (seq/s) | MFU at batch {batch} | file MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for dataset in datasets:
        flops = (lengths.get(dataset) or {}).get("flops_per_item")
        for (impl, precision), result in results.items():
            s = summary(result, dataset)
            ours = summary(results.get(_ours_key(impl, precision)), dataset)
            label = f"quantize={precision}" if impl == "tflite" else precision
            if s is None:
                why = "skipped" if "skip" in (result or {}) else "not measured"
                print(f"| {dataset} | {names[impl]} | {label} | {why} | — | — | — | — | — "
                      "| — |")
                continue
            p50, p99 = statistics.median(s["p50"]), statistics.median(s["p99"])
            rate = statistics.median(s["throughput"]) if s["throughput"] else None
            lat_ratio = p50 / statistics.median(ours["p50"]) if ours else None
            rate_ratio = (statistics.median(ours["throughput"]) / rate
                          if ours and rate and ours["throughput"] else None)
            peak = PEAK_FLOPS.get(precision)
            mfu = rate * flops / peak if rate and peak and flops else None
            size = exports.get((impl, precision), {}).get("file_mb") if impl == "tflite" else None
            print(f"| {dataset} | {names[impl]} | {label} | {p50:.1f} | {p99:.1f} | "
                  f"{_fmt(lat_ratio, '.2f') + '×' if lat_ratio else '—'} | {_fmt(rate, '.2f')} | "
                  f"{_fmt(rate_ratio, '.2f') + '×' if rate_ratio else '—'} | "
                  f"{_fmt(mfu and mfu * 100, '.1f') + '%' if mfu else '—'} | "
                  f"{_fmt(size, '.1f')} |")
    print("\n(medians over repeats; bert_tf speed-up = this ÷ bert_tf for latency, bert_tf ÷ this "
          "for seq/s, > 1 when bert_tf is faster; TFLite is compared with bert_tf float32)")


def result_rows(results, exports, lengths: dict, datasets: list[str], batch_size: int,
                names=None) -> list[dict]:
    """bench/report.py's rows: per dataset and (implementation, precision), latency p50/p99
    and throughput (with its useful FLOPs per item from `lengths`)."""
    from report import result_row

    names = names or IMPL_NAMES
    rows = []
    for dataset in datasets:
        flops = (lengths.get(dataset) or {}).get("flops_per_item")
        for (impl, precision), result in results.items():
            s = summary(result, dataset)
            tflite = impl == "tflite"
            group = f"{dataset}, {'float32' if tflite else precision}"
            name = names[impl] + (f", quantize={precision}" if tflite else "")
            common = dict(group=group, ours=impl == "bert_tf",
                          note=(result or {}).get("skip") or (result or {}).get("error"))
            if s is None:
                rows.append(result_row(name, "latency p50", "ms", [], better="lower", **common))
                continue
            rows.append(result_row(name, "latency p50", "ms", s["p50"], better="lower", **common))
            rows.append(result_row(name, "latency p99", "ms", s["p99"], better="lower", **common))
            if s["throughput"]:
                rows.append(result_row(name, f"throughput at batch {batch_size}",
                                       "sequences/s", s["throughput"], better="higher",
                                       flops_per_item=flops,
                                       peak_flops=PEAK_FLOPS.get(precision), **common))
            if tflite and "file_mb" in exports.get((impl, precision), {}) and \
                    dataset == datasets[0]:
                rows.append(result_row(name, "file size", "MB",
                                       [exports[(impl, precision)]["file_mb"]], better=None,
                                       **common))
    return rows


def _write_json(results, exports, lengths: dict, cfg: dict, vocab_desc: str,
                sources: dict) -> None:
    from report import write_results

    rows = result_rows(results, exports, lengths, FLAGS.datasets, FLAGS.batch_size)
    info = {"vocab": vocab_desc, "datasets": sources, "lengths": lengths,
            "exports": {f"{i}:{p}": v for (i, p), v in exports.items()},
            "workers": {f"{i}:{p}": (r or {}).get("info") for (i, p), r in results.items()}}
    described = "; ".join(f"{name}: {sources[name]}, {lengths[name]['mean_tokens']:.1f} tokens "
                          f"on average" if name in lengths else f"{name}: {sources[name]}"
                          for name in FLAGS.datasets)
    write_results(FLAGS.json_output, "serving", rows, info=info,
                  description=f"{os.path.basename(FLAGS.config)} (L{cfg['num_hidden_layers']} "
                              f"H{cfg['hidden_size']}), strings in → class probabilities out, "
                              f"max seq {FLAGS.seq_length}; latency: {FLAGS.latency_requests} "
                              f"batch-1 requests per repeat; throughput: "
                              f"{FLAGS.throughput_batches} batches of {FLAGS.batch_size}; "
                              f"vocab {vocab_desc}; texts: {described}; MFU counts the useful "
                              f"FLOPs (each text at its own length)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
