"""NER serving latency and throughput: strings in → entities out, bert_tf vs Hugging Face.

    .venv/bin/python bench/serving_ner.py [--config=configs/bert_base.json] [--seq_length=128]
        [--batch_size=32] [--latency_requests=40] [--repeats=3]
        [--impls=bert_tf,torch_pipeline,torch] [--precisions=float32,mixed_bfloat16]
        [--datasets=wnut17]

The texts are the WNUT-17 dev sentences (1,009 tweets and forum posts, their tokens joined with
spaces) from ../shared/data, or without them the same-length fallback of bench/real_text.py.
Every implementation takes the raw strings and returns each text's entities (type, score,
character offsets), tokenization and grouping included, from a randomly initialised token
classifier with WNUT-17's 13 IOB2 tags (the same config on both sides; only speed is measured):
  * bert_tf: a `BertTokenClassifier` written as a Google checkpoint with its labels.txt and
    exported by `export/export_saved_model.py --task=token_classifier` (`--mixed_precision=
    bfloat16` for the bf16 row: bfloat16 weights, the recommended serving setting), loaded with
    `tf.saved_model.load` and called through `signatures["serving_default"]`: word offsets,
    WordPiece, doc-stride windows for texts longer than --seq_length and the entities by
    conlleval's rules, all in the graph;
  * torch_pipeline: Hugging Face's documented way to get entities with character offsets,
    `pipeline("token-classification", aggregation_strategy="simple")` on `BertTokenizerFast` +
    `BertForTokenClassification`, called on each batch with `batch_size` = the batch and a
    `stride` that windows long texts as ours (the same shift between windows);
  * torch: the same tokenizer called once per batch (`padding="longest"`, truncated at
    --seq_length) + the model, each word read at its first piece (as ours), grouped into
    entities by conlleval's rules (`bert_tf.data.ner_metrics.entity_spans`) and located with the
    fast tokenizer's `word_to_chars` offsets: the pipeline's work without its per-text loops.
The torch rows run under `torch.inference_mode`, bf16 via `torch.autocast("cpu")`, with
--torch_threads (needs `pip install -e '.[bench]'`; skipped without torch).

Timing is bench/serving.py's (`measure`, its flags, one subprocess per implementation and
precision): --latency_requests batch-1 requests per repeat (p50, p99) and --throughput_batches
batches of --batch_size (texts/s). The bert_tf worker also reports the WordPiece-length
distribution of the texts (with [CLS] and [SEP]) and how many need more than one window; the MFU
counts the useful forward FLOPs (each window at its own length).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The checkout's bert_tf, not whichever one the interpreter has installed.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

import serving  # noqa: E402  (bench/serving.py: its flags, timing and worker plumbing)
from real_text import WNUT17_LABELS  # noqa: E402
from report import NOMINAL_PEAK_FLOPS as PEAK_FLOPS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPL_NAMES = {
    "bert_tf": "bert_tf SavedModel (export_saved_model.py --task=token_classifier)",
    "torch_pipeline": "HF token-classification pipeline (aggregation_strategy=simple)",
    "torch": "HF BertTokenizerFast (padding=longest) + BertForTokenClassification + word "
             "grouping",
}
LENGTH_PERCENTILES = (50, 90, 99, 100)
FLAGS = flags.FLAGS


def define_flags() -> None:
    """bench/serving.py's flags, those that apply here (its TFLite ones do not) shown as this
    script's, with this script's implementations and texts as defaults."""
    serving.define_flags()
    for name in ("config", "seq_length", "batch_size", "latency_requests", "throughput_batches",
                 "warmup", "repeats", "impls", "datasets", "precisions", "torch_threads",
                 "vocab_file", "do_lower_case", "num_texts", "min_chars", "work_dir",
                 "json_output"):
        flags.declare_key_flag(name)
    FLAGS.set_default("impls", list(IMPL_NAMES))
    FLAGS.set_default("datasets", ["wnut17"])


# ----------------------------------------------------------------------------- bert_tf
def _checkpoint_dir(work: str) -> str:
    return os.path.join(work, "checkpoint")


def _write_checkpoint(work: str) -> dict:
    """A random BertTokenClassifier in Google's layout, with labels.txt and vocab.txt beside it:
    what run_ner.py leaves for export_saved_model.py."""
    import keras

    from bert_tf.checkpoints import save_google_checkpoint
    from bert_tf.config import BertConfig
    from bert_tf.data.conll import write_labels
    from bert_tf.models import BertTokenClassifier

    keras.utils.set_random_seed(0)
    model = BertTokenClassifier(BertConfig.from_json_file(FLAGS.config),
                                num_labels=len(WNUT17_LABELS))
    directory = _checkpoint_dir(work)
    start = time.perf_counter()
    save_google_checkpoint(model, os.path.join(directory, "bert_model.ckpt"))
    write_labels(os.path.join(directory, "labels.txt"), WNUT17_LABELS)
    shutil.copyfile(os.path.join(work, "vocab.txt"), os.path.join(directory, "vocab.txt"))
    return {"checkpoint_s": time.perf_counter() - start}


def _export(work: str, precision: str) -> dict:
    """Exports the checkpoint with export/export_saved_model.py to serving's SavedModel path
    for (bert_tf, precision); {"error": ...} when it fails."""
    if not os.path.exists(os.path.join(_checkpoint_dir(work), "labels.txt")):
        result = serving._subprocess("checkpoint:bert_tf:float32", work, __file__)
        if "error" in result:
            return result
    cmd = [sys.executable, os.path.join(REPO, "export", "export_saved_model.py"),
           "--task=token_classifier", f"--init_checkpoint={_checkpoint_dir(work)}",
           f"--export_dir={os.path.join(work, 'saved_model')}", f"--model_name=bert_tf_{precision}",
           "--version=1", "--overwrite", f"--max_seq_length={FLAGS.seq_length}",
           f"--do_lower_case={FLAGS.do_lower_case}",
           f"--mixed_precision={serving.EXPORT_POLICY[precision]}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": f"export failed: {serving.error_line(proc.stderr)}"}
    return {"export_s": time.perf_counter() - start,
            "command": shlex.join(["python", os.path.relpath(cmd[1], REPO), *cmd[2:]])}


def _length_info(path: str, cfg: dict, datasets: dict) -> dict:
    """Per dataset, with the export's tokenizer: WordPieces per text with [CLS] and [SEP] (mean
    and percentiles), the share of texts longer than one window, and the useful forward FLOPs
    per text (each of its doc-stride windows at its own length)."""
    import numpy as np
    import tensorflow as tf

    from bert_tf.data.windows import doc_spans
    from bert_tf.serving.export import read_export_metadata
    from bert_tf.serving.token_classifier import default_doc_stride
    from bert_tf.text import BertTokenizer, load_vocab

    meta = read_export_metadata(path)
    seq = meta["max_seq_length"]
    stride = meta["doc_stride"] or default_doc_stride(seq)
    tokenizer = BertTokenizer(load_vocab(os.path.join(path, "assets", "vocab.txt")),
                              do_lower_case=meta["do_lower_case"])
    head = 2 * cfg["hidden_size"] * len(WNUT17_LABELS)  # per token; the pooler's 2H² counts too

    def flops(pieces: int) -> float:
        return sum(serving.forward_flops(cfg, w.length + 2, 0) + head * (w.length + 2)
                   for w in doc_spans(pieces, seq - 2, stride))

    out = {}
    for name, items in datasets.items():
        pieces = tokenizer.tokenize(tf.constant([item[0] for item in items])).row_lengths()
        pieces = pieces.numpy()
        tokens = pieces + 2
        out[name] = {"mean_tokens": float(tokens.mean()),
                     "percentiles": {str(q): float(np.percentile(tokens, q))
                                     for q in LENGTH_PERCENTILES},
                     "windowed": int((pieces > seq - 2).sum()), "texts": len(items),
                     "flops_per_item": float(np.mean([flops(int(n)) for n in pieces]))}
    return out


# ----------------------------------------------------------------------------- Hugging Face
def _predict_torch(cfg: dict, vocab_file: str, precision: str, use_pipeline: bool):
    tokenizer, model, info = serving.hf_peer(
        "BertForTokenClassification", cfg, vocab_file, FLAGS.do_lower_case, FLAGS.torch_threads,
        num_labels=len(WNUT17_LABELS), id2label=dict(enumerate(WNUT17_LABELS)),
        label2id={label: i for i, label in enumerate(WNUT17_LABELS)})
    if model is None:
        return None, info
    import torch
    import transformers

    tokenizer.model_max_length = FLAGS.seq_length
    bf16 = precision == "mixed_bfloat16"
    if use_pipeline:
        from bert_tf.serving.token_classifier import default_doc_stride

        # `stride` is the overlap in tokens: windows then advance by our doc_stride.
        overlap = FLAGS.seq_length - 2 - default_doc_stride(FLAGS.seq_length)
        pipe = transformers.pipeline("token-classification", model=model, tokenizer=tokenizer,
                                     aggregation_strategy="simple", stride=overlap, device="cpu")
        info["stride"] = overlap

        def predict(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return pipe([text for text, in batch], batch_size=len(batch))

        return predict, info
    return _grouped_predict(tokenizer, model, bf16), info


def _grouped_predict(tokenizer, model, bf16: bool):
    """The batched tokenizer + model, each word's first piece, entities by conlleval's rules."""
    import torch

    from bert_tf.data.ner_metrics import entity_spans

    def predict(batch):
        texts = [text for text, in batch]
        enc = tokenizer(texts, padding="longest", truncation=True, max_length=FLAGS.seq_length,
                        return_tensors="pt")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**enc).logits.float()
        score, label = (x.numpy() for x in torch.softmax(logits, -1).max(-1))
        out = []
        for i in range(len(texts)):
            first = {}  # word index → its first piece
            for j, word in enumerate(enc.word_ids(i)):
                if word is not None and word not in first:
                    first[word] = j
            words = list(first)
            tags = [WNUT17_LABELS[label[i, first[w]]] for w in words]
            entities = []
            for entity_type, a, b in entity_spans(tags):
                start, end = enc.word_to_chars(i, words[a]).start, \
                    enc.word_to_chars(i, words[b - 1]).end
                entities.append({"entity_group": entity_type, "start": start, "end": end,
                                 "word": texts[i][start:end],
                                 "score": float(score[i, [first[w] for w in words[a:b]]].mean())})
            out.append(entities)
        return out

    return predict


# ----------------------------------------------------------------------------- workers
def _spans(impl: str, out, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Per text, the (start, end) character offsets of its entities, each checked to lie in the
    text (bert_tf: that the offsets give back the entity text)."""
    if impl == "bert_tf":
        spans = [[(int(s), int(e)) for s, e in zip(out["start"][i][:n], out["end"][i][:n])]
                 for i, n in enumerate(out["num_entities"])]
        for i, n in enumerate(out["num_entities"]):
            for (s, e), text in zip(spans[i], out["entity_text"][i][:n]):
                if texts[i][s:e] != text.decode("utf-8"):
                    raise RuntimeError(f"{impl}: entity {text!r} is not text[{s}:{e}]")
    else:
        spans = [[(int(x["start"]), int(x["end"])) for x in entities] for entities in out]
    if len(spans) != len(texts) or any(not 0 <= s < e <= len(t)
                                       for t, row in zip(texts, spans) for s, e in row):
        raise RuntimeError(f"{impl}: unexpected entities {out}")
    return spans


def _run_worker(spec: str) -> None:
    step, impl, precision = spec.split(":")
    work = FLAGS.work_dir
    if step == "checkpoint":
        print("RESULT " + json.dumps(_write_checkpoint(work)), flush=True)
        return
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    datasets = serving.load_texts(work)
    if impl == "bert_tf":
        predict, info = serving._predict_bert_tf(work, impl, precision)
        info["datasets"] = _length_info(serving._saved_model_dir(work, impl, precision), cfg,
                                        datasets)
    else:
        predict, info = _predict_torch(cfg, os.path.join(work, "vocab.txt"), precision,
                                       use_pipeline=impl == "torch_pipeline")
    if predict is None:
        print("RESULT " + json.dumps(info), flush=True)
        return
    results = {}
    for name, items in datasets.items():
        sample = items[:FLAGS.batch_size]
        spans = _spans(impl, predict(sample), [text for text, in sample])
        info.setdefault("entities_in_first_batch", {})[name] = sum(map(len, spans))
        results[name] = serving.measure(predict, items, FLAGS.batch_size, FLAGS.latency_requests,
                                        FLAGS.throughput_batches, FLAGS.repeats, FLAGS.warmup)
    print("RESULT " + json.dumps({"datasets": results, "info": info}), flush=True)


# ----------------------------------------------------------------------------- driver
def _lengths_line(name: str, info: dict, seq: int) -> str:
    q = info["percentiles"]
    return (f"{name}: {info['texts']} texts, WordPieces with [CLS]/[SEP]: mean "
            f"{info['mean_tokens']:.1f}, p50 {q['50']:.0f}, p90 {q['90']:.0f}, p99 {q['99']:.0f}, "
            f"max {q['100']:.0f}; {info['windowed']} longer than one {seq}-token window")


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    seq, batch = FLAGS.seq_length, FLAGS.batch_size
    with serving.driver_setup(FLAGS.impls, IMPL_NAMES, FLAGS.config, FLAGS.work_dir,
                              "bench_serving_ner_", serving._prepare) as \
            (cfg, work, vocab_desc, sources):
        details = (f", {len(WNUT17_LABELS)} tags; max seq {seq}; vocab {vocab_desc}; texts: "
                   f"{'; '.join(f'{k}: {v}' for k, v in sources.items())}")
        print(serving.setup_line(FLAGS.config, cfg, details, FLAGS.latency_requests,
                                 FLAGS.throughput_batches, batch, FLAGS.repeats), flush=True)
        exports, results = {}, {}
        for precision in FLAGS.precisions:
            for impl in FLAGS.impls:
                if impl == "bert_tf" and precision not in exports:
                    exports[precision] = _export(work, precision)
                failed = impl == "bert_tf" and "error" in exports[precision]
                result = exports[precision] if failed else \
                    serving._subprocess(f"time:{impl}:{precision}", work, __file__)
                results[(impl, precision)] = result
                if "skip" in result or "error" in result:
                    print(f"  {impl} {precision}: not measured "
                          f"({result.get('skip') or result.get('error')})", flush=True)
        lengths = serving._length_infos(results)
        for name, info in lengths.items():
            print("  " + _lengths_line(name, info, seq), flush=True)
        serving._print_table(results, {}, lengths, FLAGS.datasets, batch, IMPL_NAMES)
        if FLAGS.json_output:
            _write_json(results, exports, lengths, cfg, vocab_desc, sources)


def _write_json(results, exports, lengths: dict, cfg: dict, vocab_desc: str,
                sources: dict) -> None:
    from report import write_results

    rows = serving.result_rows(results, {}, lengths, FLAGS.datasets, FLAGS.batch_size,
                               IMPL_NAMES)
    info = {"vocab": vocab_desc, "datasets": sources, "lengths": lengths, "exports": exports,
            "workers": {f"{i}:{p}": (r or {}).get("info") for (i, p), r in results.items()},
            "nominal_peak_flops": PEAK_FLOPS}
    texts = "; ".join(_lengths_line(name, lengths[name], FLAGS.seq_length) if name in lengths
                      else f"{name}: {sources[name]}" for name in FLAGS.datasets)
    write_results(FLAGS.json_output, "serving_ner", rows, info=info,
                  description=f"{os.path.basename(FLAGS.config)} (L{cfg['num_hidden_layers']} "
                              f"H{cfg['hidden_size']}) token classifier, {len(WNUT17_LABELS)} "
                              f"tags (WNUT-17's), strings in → entities with character offsets "
                              f"out, windows of {FLAGS.seq_length} tokens; latency: "
                              f"{FLAGS.latency_requests} batch-1 requests per repeat; "
                              f"throughput: {FLAGS.throughput_batches} batches of "
                              f"{FLAGS.batch_size}; texts: {texts} ({', '.join(sources.values())}); "
                              f"vocab {vocab_desc}; MFU counts the useful FLOPs (each window at "
                              f"its own length)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
