"""Question-answering serving latency and throughput: (question, context) strings in → answer
text, character offsets and score out, bert_tf vs Hugging Face, one run.

    .venv/bin/python bench/serving_qa.py [--config=configs/bert_base.json] [--max_seq_length=384]
        [--doc_stride=128] [--batch_size=16] [--latency_requests=20] [--repeats=3]
        [--impls=bert_tf,torch] [--precisions=float32,mixed_bfloat16] [--num_questions=256]

Both implementations answer the same questions: --num_questions of SQuAD v2.0 dev, evenly spaced
over the file (bench/real_text.py; without ../shared/data, stdlib docstring words cut to SQuAD's
question and context word counts). The model is a randomly initialised span-QA BERT (only speed is
measured); tokenization, doc-stride windows and answer extraction are timed with it:
  * bert_tf: the random `BertSpanQA` written as a Google checkpoint and exported by
    `export/export_saved_model.py --task=question_answering` (--max_seq_length, --doc_stride,
    --max_query_length, --max_answer_length; the bf16 row with `--mixed_precision=bfloat16`:
    bfloat16 weights, LayerNorm and softmax in float32, the recommended serving setting), loaded
    with `tf.saved_model.load` and called through `signatures["serving_default"](question=,
    context=)`. Inside the graph: WordPiece with character offsets, Google's run_squad windows (a
    window starts every --doc_stride context pieces), one encoder call over all windows of the
    batch padded to the longest, the best valid span over all windows (max-context rule).
  * torch: Hugging Face `BertTokenizerFast` + `BertForQuestionAnswering` (same config, eval mode,
    `torch.inference_mode`, bf16 via `torch.autocast("cpu")`; needs `pip install -e '.[bench]'`),
    through the steps of HF's extractive-QA recipe (transformers 5 dropped the
    `question-answering` pipeline that packaged them): one tokenizer call over the batch with
    `truncation="only_second"`, `max_length=--max_seq_length`, `stride=--doc_stride`,
    `return_overflowing_tokens`, `return_offsets_mapping` and `padding="longest"`; one model call
    over all windows; the n-best post-processing (the --n_best_size highest start and end logits
    of each window, spans inside the context of at most --max_answer_length tokens, score = start
    + end logit, the best over the question's windows, its text cut from the context by the
    offsets).

The two read "doc stride 128" differently: Google's (ours) is the step between window starts,
HF's tokenizer `stride` the overlap between consecutive windows, so HF cuts a long context into
fewer windows. Both are reported: windows per question of each, questions/s and windows/s.

Each (implementation, precision) runs in its own subprocess, back to back, after warm-up calls on
questions spread from the shortest to the longest context. Latency: --latency_requests questions
one at a time per repeat, p50 and p99 (ms). Throughput: --throughput_batches batches of
--batch_size questions per repeat. MFU counts the useful forward FLOPs of each implementation's
own windows (each at its own length: padding not counted) against the CPU's nominal peak
(bench/report.py adds the MFU against the peak bench/peak.py measures).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The checkout's bert_tf, not whichever one the interpreter has installed.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from report import NOMINAL_PEAK_FLOPS as PEAK_FLOPS  # noqa: E402
from serving import (EXPORT_POLICY, define_common_flags, driver_setup,  # noqa: E402
                     error_line, forward_flops, hf_peer, measure, percentile, prepare_vocab,
                     setup_line, summary, worker_result)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS


def define_flags() -> None:
    """bench/serving.py's common flags with this script's defaults, and the SQuAD ones."""
    define_common_flags(["bert_tf", "torch"], batch_size=16, latency_requests=20,
                        throughput_batches=2, warmup=6, items="questions")
    flags.DEFINE_integer("max_seq_length", 384,
                         "Window length in WordPieces (question + context).")
    flags.DEFINE_integer("doc_stride", 128, "Google's doc_stride for ours (step between window "
                         "starts), the tokenizer's stride for HF (overlap between windows).")
    flags.DEFINE_integer("max_query_length", 64,
                         "Questions are cut to this many WordPieces (ours).")
    flags.DEFINE_integer("max_answer_length", 30, "Longest answer, in WordPieces.")
    flags.DEFINE_integer("n_best_size", 20,
                         "HF post-processing: start and end candidates per window.")
    flags.DEFINE_integer("num_questions", 256,
                         "Distinct questions (requests cycle through them).")


IMPL_NAMES = {
    "bert_tf": "bert_tf SavedModel (serving_default)",
    "torch": "HF BertTokenizerFast + BertForQuestionAnswering + n-best post-processing",
}
DATASET = "squad"  # the key of the questions in the workers' results


def span_qa_flops(cfg: dict, tokens: int) -> float:
    """Matmul FLOPs of one window's forward pass: the encoder and the [2, H] span head."""
    no_head = forward_flops(cfg, tokens, num_classes=0) - 2 * cfg["hidden_size"] ** 2  # pooler
    return no_head + 2 * 2 * cfg["hidden_size"] * tokens


# ----------------------------------------------------------------------------- bert_tf
def _checkpoint_dir(work: str) -> str:
    return os.path.join(work, "checkpoint")


def _saved_model_dir(work: str, precision: str) -> str:
    return os.path.join(work, "saved_model", f"qa_{precision}", "1")


def _write_checkpoint(work: str, vocab_file: str) -> dict:
    """A random BertSpanQA as a run_squad-style Google checkpoint (what the export tool reads)."""
    import keras

    from bert_tf.checkpoints import save_google_checkpoint
    from bert_tf.serving.export import ExportSpec

    keras.utils.set_random_seed(0)
    spec = ExportSpec.from_files("question_answering", FLAGS.config, vocab_file,
                                 max_seq_length=FLAGS.max_seq_length)
    start = time.perf_counter()
    os.makedirs(_checkpoint_dir(work), exist_ok=True)  # a directory: the prefix goes inside
    save_google_checkpoint(spec.build_model(), _checkpoint_dir(work))
    shutil.copyfile(vocab_file, os.path.join(_checkpoint_dir(work), "vocab.txt"))
    return {"checkpoint_s": time.perf_counter() - start}


def _start_export(work: str, precision: str) -> tuple[subprocess.Popen, str, float]:
    """Starts export/export_saved_model.py --task=question_answering on the checkpoint (its
    stderr to a file: two exports run at once, and a full pipe would block one)."""
    cmd = [sys.executable, os.path.join(REPO, "export", "export_saved_model.py"),
           "--task=question_answering", f"--init_checkpoint={_checkpoint_dir(work)}",
           f"--do_lower_case={FLAGS.do_lower_case}", f"--max_seq_length={FLAGS.max_seq_length}",
           f"--doc_stride={FLAGS.doc_stride}", f"--max_query_length={FLAGS.max_query_length}",
           f"--max_answer_length={FLAGS.max_answer_length}",
           f"--mixed_precision={EXPORT_POLICY[precision]}",
           f"--export_dir={os.path.join(work, 'saved_model')}", f"--model_name=qa_{precision}",
           "--version=1", "--overwrite"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    log = os.path.join(work, f"export_{precision}.log")
    with open(log, "w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO, env=env)
    return proc, log, time.perf_counter()


def _finish_export(proc: subprocess.Popen, log: str, start: float) -> dict:
    if proc.wait() != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            return {"error": "export: " + error_line(f.read())}
    return {"export_s": time.perf_counter() - start}


def _predict_bert_tf(work: str, precision: str, items):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tf-text ops of the graph)

    serve = tf.saved_model.load(_saved_model_dir(work, precision)).signatures["serving_default"]

    def predict(batch):
        questions, contexts = zip(*batch)
        out = serve(question=tf.constant(questions), context=tf.constant(contexts))
        return {"answer": [a.decode("utf-8") for a in out["answer"].numpy()],
                "start": out["start"].numpy().tolist(), "end": out["end"].numpy().tolist(),
                "score": out["score"].numpy().tolist()}

    return predict, _bert_tf_windows(_saved_model_dir(work, precision), items)


def _bert_tf_windows(path: str, items) -> dict:
    """Each question's WordPieces (question cut to max_query_length, context) and the lengths
    of its model inputs under Google's doc-stride rule, with the export's own tokenizer."""
    import tensorflow as tf

    from bert_tf.data.windows import doc_spans
    from bert_tf.text import BertPreprocessor, load_vocab

    pre = BertPreprocessor(load_vocab(os.path.join(path, "assets", "vocab.txt")),
                           do_lower_case=FLAGS.do_lower_case, seq_length=FLAGS.max_seq_length)
    questions, contexts = zip(*items)
    q_len = [min(int(n), FLAGS.max_query_length)
             for n in pre.tokenize(tf.constant(questions)).row_lengths().numpy()]
    c_len = [int(n) for n in pre.tokenize(tf.constant(contexts)).row_lengths().numpy()]
    windows = [[q + 3 + span.length for span in
                doc_spans(c, FLAGS.max_seq_length - q - 3, FLAGS.doc_stride)]
               for q, c in zip(q_len, c_len)]
    return {"windows": windows, "question_pieces": q_len, "context_pieces": c_len}


# ----------------------------------------------------------------------------- Hugging Face
def _hf_best_span(start_logits, end_logits, in_context, n_best: int, max_answer_length: int):
    """(score, start, end) of one window's best span by HF's n-best rule, or None."""
    import numpy as np

    best = None
    starts = np.argsort(start_logits)[::-1][:n_best]
    ends = np.argsort(end_logits)[::-1][:n_best]
    for s in starts:
        for e in ends:
            if not (in_context[s] and in_context[e]) or e < s or e - s + 1 > max_answer_length:
                continue
            score = float(start_logits[s] + end_logits[e])
            if best is None or score > best[0]:
                best = (score, int(s), int(e))
    return best


def _predict_torch(cfg: dict, vocab_file: str, precision: str, items):
    tokenizer, model, info = hf_peer("BertForQuestionAnswering", cfg, vocab_file,
                                     FLAGS.do_lower_case, FLAGS.torch_threads)
    if model is None:
        return None, info
    import torch

    bf16 = precision == "mixed_bfloat16"
    windowing = dict(truncation="only_second", max_length=FLAGS.max_seq_length,
                     stride=FLAGS.doc_stride, return_overflowing_tokens=True)

    def predict(batch):
        questions, contexts = (list(column) for column in zip(*batch))
        enc = tokenizer(questions, contexts, **windowing, return_offsets_mapping=True,
                        padding="longest", return_tensors="pt")
        owner = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**enc)
        start_logits, end_logits = out.start_logits.float().numpy(), out.end_logits.float().numpy()
        best = [None] * len(batch)
        for w, q in enumerate(owner):
            in_context = [s == 1 for s in enc.sequence_ids(w)]
            span = _hf_best_span(start_logits[w], end_logits[w], in_context, FLAGS.n_best_size,
                                 FLAGS.max_answer_length)
            if span and (best[q] is None or span[0] > best[q][0]):
                best[q] = (span[0], offsets[w][span[1]][0], offsets[w][span[2]][1])
        best = [b or (0.0, -1, -1) for b in best]
        return {"answer": [c[s:e] if s >= 0 else "" for c, (_, s, e) in zip(contexts, best)],
                "start": [b[1] for b in best], "end": [b[2] for b in best],
                "score": [b[0] for b in best]}

    questions, contexts = (list(column) for column in zip(*items))
    enc = tokenizer(questions, contexts, **windowing)
    windows = [[] for _ in items]
    for q, ids in zip(enc["overflow_to_sample_mapping"], enc["input_ids"]):
        windows[q].append(len(ids))
    info["windows"] = windows
    return predict, info


# ----------------------------------------------------------------------------- workers
def _check_answers(impl: str, batch, out: dict) -> None:
    """Every answer is the context's text at its (code point) offsets."""
    if not len(out["answer"]) == len(out["start"]) == len(batch):
        raise RuntimeError(f"{impl}: {len(out['answer'])} answers for {len(batch)} questions")
    for (_, context), answer, start, end in zip(batch, out["answer"], out["start"], out["end"]):
        if start >= 0 and context[start:end] != answer:
            raise RuntimeError(f"{impl}: answer {answer!r} is not context[{start}:{end}] "
                               f"({context[start:end]!r})")


def _run_worker(spec: str) -> None:
    step, impl, precision = spec.split(":")
    work = FLAGS.work_dir
    vocab_file = os.path.join(work, "vocab.txt")
    if step == "checkpoint":
        print("RESULT " + json.dumps(_write_checkpoint(work, vocab_file)), flush=True)
        return
    with open(FLAGS.config) as fh:
        cfg = json.load(fh)
    with open(os.path.join(work, "questions.json"), encoding="utf-8") as f:
        items = [tuple(item) for item in json.load(f)["items"]]
    if impl == "bert_tf":
        predict, info = _predict_bert_tf(work, precision, items)
    else:
        predict, info = _predict_torch(cfg, vocab_file, precision, items)
    if predict is None:
        print("RESULT " + json.dumps(info), flush=True)
        return
    _check_answers(impl, items[:2], predict(items[:2]))
    windows = {item: len(w) for item, w in zip(items, info["windows"])}
    result = measure(predict, items, FLAGS.batch_size, FLAGS.latency_requests,
                     FLAGS.throughput_batches, FLAGS.repeats, FLAGS.warmup,
                     units=lambda batch: sum(windows[item] for item in batch))
    print("RESULT " + json.dumps({"datasets": {DATASET: result}, "info": info}), flush=True)


# ----------------------------------------------------------------------------- driver
# The flags a worker is given.
WORKER_FLAGS = ("config", "max_seq_length", "doc_stride", "max_query_length", "max_answer_length",
                "n_best_size", "batch_size", "latency_requests", "throughput_batches", "warmup",
                "repeats", "do_lower_case", "torch_threads")


def _subprocess(step: str, work: str) -> dict:
    return worker_result(__file__, step, work,
                         {name: getattr(FLAGS, name) for name in WORKER_FLAGS})


def _prepare(work: str) -> tuple[str, str]:
    """Writes work/vocab.txt and work/questions.json; returns their descriptions."""
    from real_text import load_squad

    vocab = prepare_vocab(os.path.join(work, "vocab.txt"), FLAGS.vocab_file, FLAGS.config,
                          FLAGS.do_lower_case)
    items, source = load_squad(FLAGS.num_questions)
    with open(os.path.join(work, "questions.json"), "w", encoding="utf-8") as f:
        json.dump({"items": items}, f)
    return vocab, source


def _lengths(results: dict, cfg: dict) -> dict:
    """Per implementation: windows per question, window tokens and useful FLOPs per question;
    for bert_tf also the question and context WordPieces."""
    import numpy as np

    out = {}
    for (impl, _), result in results.items():
        info = (result or {}).get("info") or {}
        if impl in out or "windows" not in info:
            continue
        counts = [len(w) for w in info["windows"]]
        tokens = [t for w in info["windows"] for t in w]
        out[impl] = {"windows_per_question": float(np.mean(counts)),
                     "multi_window_fraction": float(np.mean([c > 1 for c in counts])),
                     "max_windows": max(counts), "mean_window_tokens": float(np.mean(tokens)),
                     "flops_per_question": float(np.mean(
                         [sum(span_qa_flops(cfg, t) for t in w) for w in info["windows"]]))}
        for name in ("question_pieces", "context_pieces"):
            if name in info:
                out[impl][name] = {f"p{q}": percentile(info[name], q) for q in (50, 90, 99)}
                out[impl][name].update(mean=float(np.mean(info[name])), max=max(info[name]))
    return out


def _describe_lengths(lengths: dict) -> str:
    parts = []
    ours = lengths.get("bert_tf", {})
    for name, what in (("context_pieces", "contexts"), ("question_pieces", "questions")):
        if name in ours:
            d = ours[name]
            parts.append(f"{what} {d['mean']:.0f} WordPieces on average (p50 {d['p50']:.0f}, "
                         f"p90 {d['p90']:.0f}, p99 {d['p99']:.0f}, max {d['max']})")
    for impl, d in lengths.items():
        parts.append(f"{impl}: {d['windows_per_question']:.3f} windows per question "
                     f"({d['multi_window_fraction']:.1%} need more than one, at most "
                     f"{d['max_windows']}) of {d['mean_window_tokens']:.0f} tokens on average")
    return "; ".join(parts) or "no lengths (nothing measured)"


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _run_worker(FLAGS.worker)
        return
    with driver_setup(FLAGS.impls, IMPL_NAMES, FLAGS.config, FLAGS.work_dir,
                      "bench_serving_qa_", _prepare) as (cfg, work, vocab, source):
        details = (f"; max seq {FLAGS.max_seq_length}, doc stride {FLAGS.doc_stride}; "
                   f"{span_qa_flops(cfg, FLAGS.max_seq_length) / 1e9:.1f} GFLOP per full window; "
                   f"vocab {vocab}; questions: {source}")
        print(setup_line(FLAGS.config, cfg, details, FLAGS.latency_requests,
                         FLAGS.throughput_batches, FLAGS.batch_size, FLAGS.repeats), flush=True)
        exports = _exports(work)
        results = {}
        for precision in FLAGS.precisions:
            for impl in FLAGS.impls:
                failed = exports.get(precision) if impl == "bert_tf" else None
                result = failed if failed and "error" in failed else \
                    _subprocess(f"time:{impl}:{precision}", work)
                results[(impl, precision)] = result
                if "skip" in result or "error" in result:
                    print(f"  {impl} {precision}: not measured "
                          f"({result.get('skip') or result.get('error')})", flush=True)
        lengths = _lengths(results, cfg)
        print("  " + _describe_lengths(lengths), flush=True)
        _print_table(results, lengths)
        if FLAGS.json_output:
            _write_json(results, exports, lengths, cfg, vocab, source)


def _exports(work: str) -> dict:
    """The checkpoint, then one export per precision ({precision: export_s or error})."""
    if "bert_tf" not in FLAGS.impls:
        return {}
    checkpoint = _subprocess("checkpoint:bert_tf:float32", work)
    if "error" in checkpoint:
        exports = {precision: dict(checkpoint) for precision in FLAGS.precisions}
    else:
        # Side by side: an export is mostly single-threaded tracing, and nothing is timed yet.
        started = {precision: _start_export(work, precision) for precision in FLAGS.precisions}
        exports = {precision: _finish_export(*started[precision])
                   for precision in FLAGS.precisions}
    for precision, export in exports.items():
        print(f"  bert_tf {precision}: " + (export.get("error") or
                                            f"exported in {export['export_s']:.0f} s"),
              flush=True)
    return exports


def _figures(result: dict | None) -> dict | None:
    """Medians of one run: p50, p99 (ms), questions/s, windows/s."""
    s = summary(result, DATASET)
    if s is None:
        return None
    median = lambda values: statistics.median(values) if values else None  # noqa: E731
    return {"p50": median(s["p50"]), "p99": median(s["p99"]), "questions": median(s["throughput"]),
            "windows": median(s["unit_throughput"])}


def _cell(value: float | None, spec: str) -> str:
    """A table cell: `value` formatted by `spec` (a trailing × kept), — when missing."""
    if not value:
        return "—"
    return format(value, spec.rstrip("×")) + ("×" if spec.endswith("×") else "")


def _print_table(results: dict, lengths: dict) -> None:
    batch = FLAGS.batch_size
    print(f"\n| implementation | precision | windows/question | p50 ms | p99 ms | bert_tf speed-up "
          f"(p50) | batch-{batch} questions/s | windows/s | bert_tf speed-up (questions/s) | "
          f"MFU at batch {batch} |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (impl, precision), result in results.items():
        f = _figures(result)
        length = lengths.get(impl, {})
        if f is None:
            print(f"| {IMPL_NAMES[impl]} | {precision} | not measured" + " | —" * 7 + " |")
            continue
        ours = _figures(results.get(("bert_tf", precision))) or {}
        flops, peak = length.get("flops_per_question"), PEAK_FLOPS.get(precision)
        rate = f["questions"]
        cells = [_cell(length.get("windows_per_question"), ".3f"), _cell(f["p50"], ".1f"),
                 _cell(f["p99"], ".1f"),
                 _cell(ours.get("p50") and f["p50"] / ours["p50"], ".2f×"),
                 _cell(rate, ".2f"), _cell(f["windows"], ".2f"),
                 _cell(rate and ours.get("questions") and ours["questions"] / rate, ".2f×"),
                 _cell(rate and flops and peak and rate * flops / peak, ".1%")]
        print(f"| {IMPL_NAMES[impl]} | {precision} | " + " | ".join(cells) + " |")
    print("\n(medians over repeats; bert_tf speed-up = this ÷ bert_tf for latency, bert_tf ÷ "
          "this for questions/s, > 1 when bert_tf is faster)")


def _write_json(results: dict, exports: dict, lengths: dict, cfg: dict, vocab: str,
                source: str) -> None:
    from report import result_row, write_results

    batch = FLAGS.batch_size
    rows = []
    for (impl, precision), result in results.items():
        s = summary(result, DATASET)
        common = dict(group=precision, ours=impl == "bert_tf",
                      note=(result or {}).get("skip") or (result or {}).get("error"))
        name = IMPL_NAMES[impl]
        if s is None:
            rows.append(result_row(name, "latency p50", "ms", [], better="lower", **common))
            continue
        rows += [result_row(name, "latency p50", "ms", s["p50"], better="lower", **common),
                 result_row(name, "latency p99", "ms", s["p99"], better="lower", **common),
                 result_row(name, f"throughput at batch {batch}, questions", "questions/s",
                            s["throughput"], better="higher",
                            flops_per_item=lengths.get(impl, {}).get("flops_per_question"),
                            peak_flops=PEAK_FLOPS.get(precision), **common),
                 result_row(name, f"throughput at batch {batch}, windows", "windows/s",
                            s["unit_throughput"], better="higher", **common)]
    info = {"vocab": vocab, "questions": source, "lengths": lengths,
            "exports": exports,
            "workers": {f"{i}:{p}": {k: v for k, v in ((r or {}).get("info") or {}).items()
                                     if k not in ("windows", "question_pieces",
                                                  "context_pieces")}
                        for (i, p), r in results.items()}}
    write_results(FLAGS.json_output, "serving_qa", rows, info=info, description=(
        f"{os.path.basename(FLAGS.config)} (L{cfg['num_hidden_layers']} H{cfg['hidden_size']}), "
        f"(question, context) strings in → answer, offsets and score out; max seq "
        f"{FLAGS.max_seq_length}, doc stride {FLAGS.doc_stride} (ours: step between window "
        f"starts, Google's; HF: overlap between windows), max query {FLAGS.max_query_length}, "
        f"max answer {FLAGS.max_answer_length}; latency: {FLAGS.latency_requests} batch-1 "
        f"requests per repeat; throughput: {FLAGS.throughput_batches} batches of {batch} "
        f"questions; vocab {vocab}; questions: {source}; {_describe_lengths(lengths)}; MFU "
        f"counts the useful FLOPs of each implementation's own windows"))


if __name__ == "__main__":
    define_flags()
    app.run(main)
