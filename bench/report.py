"""Runs every benchmark in bench/ and writes BENCHMARKS.md (what `make bench` does).

    .venv/bin/python bench/report.py [--output=BENCHMARKS.md] [--work_dir=output/bench]
        [--quick] [--only=tokenization,serving] [--from_json]

Each benchmark script runs as its own process with `--json_output=<work_dir>/<name>.json` (its
printed table goes to the console and to `<work_dir>/<name>.log`); the report then reads the
JSON files and writes one markdown file: the machine (CPU model, cores, memory, AVX-512/AMX
flags), the package versions, the date, the exact commands, and per benchmark a table of every
measured figure with the best and the median of its runs, the speed-up of ours over each peer
(medians, same metric and group) and, where FLOPs apply (training, inference), the model FLOPs
utilisation against this CPU's nominal peak (`NOMINAL_PEAK_FLOPS`) and against the peak
measured in the same run by bench/peak.py (large fp32/bf16 GEMMs through TensorFlow's oneDNN
kernels; the `peak` benchmark runs first). `--from_json` only re-renders from the JSON files
already in --work_dir.

`--quick` (`make bench BENCH_QUICK=1`) runs every benchmark with tiny settings (BERT-tiny,
short corpora, one repeat) to smoke-test the pipeline in a few minutes; its figures mean
nothing and go to output/bench-quick/ by default, never to BENCHMARKS.md.

The JSON format the scripts write (`write_results`):
    {"benchmark": name, "description": str, "command": [argv], "settings": {flag: value},
     "info": {...}, "date": ISO time,
     "rows": [{"impl": str, "ours": bool, "group": str, "metric": str, "unit": str,
               "better": "higher" | "lower" | null, "values": [one per run],
               "flops_per_item": float | null, "peak_flops": float | null, "note": str | null}]}
Rows are compared with the `ours` rows of the same metric and group (a precision, for example);
MFU = value (items/s) × flops_per_item ÷ peak_flops (the nominal peak of the row's precision);
the measured MFU divides by peak.json's `info.peak_flops[precision]` instead, the precision being
the one whose nominal peak the row names.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
# The 2-core CPU's nominal peaks (cores × clock × FLOPs per cycle: AVX-512 fp32 FMA, AMX bf16);
# bench/peak.py measures what a large GEMM actually reaches.
NOMINAL_PEAK_FLOPS = {"float32": 0.33e12, "mixed_bfloat16": 5.3e12}


# ----------------------------------------------------------------------------- JSON (scripts)
def result_row(impl: str, metric: str, unit: str, values, *, better: str | None,
               ours: bool = False, group: str = "", flops_per_item: float | None = None,
               peak_flops: float | None = None, note: str | None = None) -> dict:
    """One measured figure of one implementation: all its run values (see the module docstring)."""
    if better not in ("higher", "lower", None):
        raise ValueError(f"better must be 'higher', 'lower' or None, got {better!r}")
    return {"impl": impl, "ours": bool(ours), "group": group, "metric": metric, "unit": unit,
            "better": better, "values": [float(v) for v in values],
            "flops_per_item": flops_per_item, "peak_flops": peak_flops, "note": note}


def _flag_settings() -> dict:
    """The main script's own absl flags and their values (internal ones left out)."""
    try:
        from absl import flags
    except ImportError:
        return {}
    out = {}
    for flag in flags.FLAGS.get_key_flags_for_module(sys.argv[0]):
        if flag.name in ("worker", "json_output"):
            continue
        value = flag.value
        out[flag.name] = value if isinstance(value, (str, int, float, bool, list, type(None))) \
            else str(value)
    return out


def write_results(path: str, benchmark: str, rows: list[dict], *, description: str = "",
                  info: dict | None = None) -> None:
    """Writes a benchmark's results as JSON for this report."""
    data = {"benchmark": benchmark, "description": description, "command": list(sys.argv),
            "settings": _flag_settings(), "info": info or {},
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


# ----------------------------------------------------------------------------- the benchmarks
# (name, title, script and its arguments, quick-mode arguments, pass the shared vocab?)
BENCHMARKS = [
    ("peak", "Measured peak (large GEMMs)", ["bench/peak.py"],
     ["--sizes=256,512", "--repeats=2"], False),
    ("tokenization", "Tokenization + packing", ["bench/tokenization.py"],
     ["--lines=2000", "--repeats=1"], True),
    ("pretraining_data", "create_pretraining_data", ["bench/pretraining_data.py"],
     ["--sentences=3000", "--dupe_factor=1", "--repeats=1"], True),
    ("pretraining", "Pretraining step", ["bench/pretraining.py"],
     ["--config=configs/bert_tiny.json", "--batch_size=4", "--seq_length=32", "--steps=2"], False),
    ("finetuning", "Fine-tuning step (classifier)", ["bench/pretraining.py", "--head=classifier"],
     ["--config=configs/bert_tiny.json", "--batch_size=4", "--seq_length=32", "--steps=2"], False),
    ("finetuning_ner", "Fine-tuning step (token classifier, NER)",
     ["bench/pretraining.py", "--head=token_classifier"],
     ["--config=configs/bert_tiny.json", "--batch_size=4", "--seq_length=32", "--steps=2"], False),
    ("finetuning_qa", "Fine-tuning step (span QA, seq 384)",
     ["bench/pretraining.py", "--head=span_qa", "--seq_length=384", "--batch_size=4"],
     ["--config=configs/bert_tiny.json", "--batch_size=2", "--seq_length=64", "--steps=2"], False),
    ("finetuning_epoch", "One MRPC epoch, fine-tuning wall-clock",
     ["bench/finetuning_epoch.py"],
     ["--config=configs/bert_tiny.json", "--max_seq_length=32", "--batch_size=8",
      "--max_train_examples=64", "--max_eval_examples=32", "--precisions=float32"], True),
    ("serving", "Serving (strings in → classifier outputs)", ["bench/serving.py"],
     ["--config=configs/bert_tiny.json", "--seq_length=32", "--batch_size=8",
      "--latency_requests=5", "--throughput_batches=1", "--repeats=1", "--warmup=1",
      "--num_texts=64", "--min_chars=200"], True),
    ("serving_ner", "Serving NER (strings in → entities)", ["bench/serving_ner.py"],
     ["--config=configs/bert_tiny.json", "--seq_length=32", "--batch_size=8",
      "--latency_requests=5", "--throughput_batches=1", "--repeats=1", "--warmup=1"], True),
    ("serving_qa", "Serving (question, context → answer)", ["bench/serving_qa.py"],
     ["--config=configs/bert_tiny.json", "--max_seq_length=128", "--doc_stride=64",
      "--max_query_length=32", "--num_questions=12", "--batch_size=4", "--latency_requests=3",
      "--throughput_batches=1", "--repeats=1", "--warmup=2"], True),
]
BENCHMARK_NAMES = [b[0] for b in BENCHMARKS]


def shared_vocab_file() -> str | None:
    """Google's uncased vocab from ../shared/data (or $BERT_TF_SHARED_DATA), if present."""
    shared = os.environ.get("BERT_TF_SHARED_DATA",
                            os.path.join(os.path.dirname(REPO), "shared", "data"))
    path = os.path.join(shared, "google_ckpt_index", "uncased_L-4_H-256_A-4", "vocab.txt")
    return path if os.path.exists(path) else None


def _rel(path: str) -> str:
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith("..") and os.path.isabs(path) else rel


def benchmark_commands(python: str, work_dir: str, quick: bool
                       ) -> list[tuple[str, str, list[str]]]:
    """(name, title, argv) of each benchmark to run, with --json_output into work_dir."""
    vocab = shared_vocab_file()
    out = []
    for name, title, script, quick_args, takes_vocab in BENCHMARKS:
        cmd = [_rel(python), *script, *(quick_args if quick else [])]
        if takes_vocab and vocab:
            cmd.append(f"--vocab_file={vocab}")
        cmd.append(f"--json_output={_rel(os.path.join(work_dir, name + '.json'))}")
        out.append((name, title, cmd))
    return out


def run_benchmark(cmd: list[str], log_path: str) -> tuple[int, float, str]:
    """Runs one benchmark (output to the console and the log); returns (rc, seconds, last line)."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    last = ""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            if line.strip():
                last = line.strip()
        rc = proc.wait()
    return rc, time.perf_counter() - start, last


# ----------------------------------------------------------------------------- environment
def machine_info() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_gib": None, "flags": [], "os": platform.platform()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpuinfo = f.read()
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and info["cpu"] in ("", platform.machine(),
                                                              platform.processor()):
                info["cpu"] = value.strip()
            if key.strip() == "flags":
                have = set(value.split())
                info["flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni",
                                             "avx512_bf16", "avx512_fp16", "amx_tile",
                                             "amx_bf16", "amx_int8") if f in have]
                break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


PACKAGES = ["tensorflow", "tensorflow-text", "keras", "keras-hub", "torch", "transformers",
            "tokenizers", "numpy"]
_VERSIONS_SNIPPET = """
import json, platform, importlib.metadata as m
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(), **{p: v(p) for p in %r}}))
""" % (PACKAGES,)


def software_versions(python: str) -> dict:
    """Versions of the packages in the interpreter that runs the benchmarks, and the checkout."""
    try:
        out = subprocess.run([python, "-c", _VERSIONS_SNIPPET], capture_output=True, text=True,
                             check=True).stdout
        versions = json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        versions = {"python": platform.python_version()}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        versions["bert_tf (git)"] = commit + (" + local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return versions


# ----------------------------------------------------------------------------- markdown
def _number(x: float) -> str:
    if x != x:  # NaN
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _best(row: dict) -> float | None:
    if not row["values"]:
        return None
    return min(row["values"]) if row["better"] == "lower" else max(row["values"])


def _median(row: dict) -> float | None:
    return statistics.median(row["values"]) if row["values"] else None


def _speedup(ours: dict, other: dict) -> float | None:
    """How many times faster ours is than `other` (medians); None where it does not apply."""
    a, b = _median(ours), _median(other)
    if not a or not b or other["better"] is None:
        return None
    return a / b if other["better"] == "higher" else b / a


def _mfu(row: dict, value: float | None, peak: float | None = None) -> float | None:
    peak = peak or row.get("peak_flops")
    if value is None or not row.get("flops_per_item") or not peak:
        return None
    return value * row["flops_per_item"] / peak


def row_precision(row: dict) -> str | None:
    """The precision whose nominal peak the row's MFU uses (None if it names another peak)."""
    for precision, peak in NOMINAL_PEAK_FLOPS.items():
        if row.get("peak_flops") and abs(row["peak_flops"] - peak) <= 1e-6 * peak:
            return precision
    return None


def benchmark_table(data: dict, measured_peaks: dict | None = None) -> list[str]:
    """The markdown table of one benchmark's JSON; with `measured_peaks` ({precision: FLOP/s},
    bench/peak.py's), MFU columns against those as well."""
    rows = data["rows"]
    has_group = any(r["group"] for r in rows)
    has_mfu = any(r.get("flops_per_item") and r.get("peak_flops") for r in rows)
    measured_peaks = measured_peaks or {}
    header = ["implementation"] + (["group"] if has_group else []) + \
        ["metric", "unit", "runs", "best", "median", "speed-up of ours (median)"]
    if has_mfu:
        header += ["MFU (best)", "MFU (median)"]
        if measured_peaks:
            header += ["MFU of measured peak (best)", "MFU of measured peak (median)"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if h in ("implementation", "group", "metric", "unit")
                            else "---:" for h in header) + "|"]
    for row in rows:
        impl = row["impl"] + (" (ours)" if row["ours"] else "")
        cells = [impl] + ([row["group"] or ""] if has_group else []) + [row["metric"], row["unit"]]
        if not row["values"]:
            why = row.get("note") or "not measured"
            cells += ["0", "—", "—", why]
        else:
            best, median = _best(row), _median(row)
            if row["ours"] or row["better"] is None:
                ratio = "—"
            else:
                peers = [r for r in rows if r["ours"] and r["metric"] == row["metric"]
                         and r["group"] == row["group"] and r["values"]]
                parts = []
                for ours in peers:
                    s = _speedup(ours, row)
                    if s is not None:
                        parts.append(f"{s:.2f}×" + (f" ({ours['impl']})" if len(peers) > 1
                                                    else ""))
                ratio = "; ".join(parts) or "—"
            cells += [str(len(row["values"])), _number(best), _number(median), ratio]
        if has_mfu:
            peaks = [None] + ([measured_peaks.get(row_precision(row)) or -1.0]
                              if measured_peaks else [])
            for peak in peaks:
                for value in (_best(row), _median(row)):
                    m = None if peak == -1.0 else _mfu(row, value, peak)
                    cells.append("—" if m is None else f"{m:.1%}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def measured_peaks(results: list[dict]) -> dict[str, float]:
    """{precision: FLOP/s} measured by bench/peak.py in this run ({} when it did not run)."""
    for item in results:
        if item["name"] == "peak" and item.get("data"):
            return dict(item["data"].get("info", {}).get("peak_flops") or {})
    return {}


def _peaks_line(measured: dict[str, float]) -> str:
    def tflops(x):
        return f"{x / 1e12:.3g} TFLOP/s"

    names = {"float32": "fp32", "mixed_bfloat16": "bf16"}
    nominal = ", ".join(f"{names[p]} ≈ {tflops(v)}" for p, v in NOMINAL_PEAK_FLOPS.items())
    line = f"Peaks used for MFU: nominal (this 2-core CPU) {nominal}"
    if measured:
        line += ("; measured by bench/peak.py in this run (large GEMMs through TensorFlow's "
                 "oneDNN kernels) " + ", ".join(f"{names.get(p, p)} {tflops(v)}"
                                                for p, v in measured.items()))
    return line + "."


def render(results: list[dict], machine: dict, versions: dict, commands: list[str],
           quick: bool, date: str, durations: dict | None = None,
           load_before: dict | None = None) -> str:
    """BENCHMARKS.md from the benchmarks' JSON (each dict: name, title, data or error)."""
    measured = measured_peaks(results)
    out = ["# Benchmarks", ""]
    out.append(f"Written by `bench/report.py` (`make bench`) on {date}. Every figure is measured "
               "on the machine below, all implementations back to back in one run; compare "
               "ratios within one run only (the machine may be shared and noisy).")
    if quick:
        out += ["", "**Quick mode (`--quick`): tiny models and one repeat, to smoke-test the "
                "pipeline. These figures say nothing about performance.**"]
    out += ["", "## Machine", "", "| | |", "|---|---|",
            f"| CPU | {machine.get('cpu')} |", f"| cores | {machine.get('cores')} |",
            f"| memory | {machine.get('memory_gib')} GiB |",
            f"| CPU flags | {', '.join(machine.get('flags') or []) or '—'} |",
            f"| OS | {machine.get('os')} |",
            "", _peaks_line(measured), "", "## Software", "", "| package | version |",
            "|---|---|"]
    for name, version in versions.items():
        out.append(f"| {name} | {version or 'not installed'} |")
    out += ["", "## Commands", "", "```bash", *commands, "```", ""]
    out += ["Columns: *best* is the fastest run (lowest time, highest rate), *median* the median "
            "of the runs; *speed-up of ours* is, from the medians, how many times faster ours "
            "is than that row (same metric and group; > 1: ours faster); MFU = rate × FLOPs per "
            "item ÷ the CPU's nominal peak of the precision; *MFU of measured peak* divides by "
            "the rate bench/peak.py measured instead (how far from what this machine reaches).",
            ""]
    for item in results:
        out += [f"## {item['title']} (`{item['name']}`)", ""]
        data = item.get("data")
        if data is None:
            out += [f"Not measured: {item.get('error', 'no results')}", ""]
            continue
        if data.get("description"):
            took = (durations or {}).get(item["name"])
            load = (load_before or {}).get(item["name"])
            notes = ([f"finished {data['date'][:16].replace('T', ' ')} UTC"] if data.get("date")
                     else []) + ([f"the script ran {took:.0f} s"] if took else []) + \
                ([f"1-minute load average before it: {load:.1f} on {machine.get('cores')} "
                  "cores"] if load is not None else [])
            out += [data["description"] + (f" ({'; '.join(notes)})" if notes else ""), ""]
        out += benchmark_table(data, measured)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- main
def _define_flags():
    from absl import flags

    flags.DEFINE_string("output", None, "Markdown file to write (default: BENCHMARKS.md; with "
                        "--quick output/bench-quick/BENCHMARKS.md).")
    flags.DEFINE_string("work_dir", None, "Where the JSON results and logs go (default: "
                        "output/bench, or output/bench-quick with --quick).")
    flags.DEFINE_bool("quick", False, "Tiny settings and one repeat: a smoke test of the "
                      "pipeline (`make bench BENCH_QUICK=1`).")
    flags.DEFINE_list("only", None, f"Benchmarks to run (default all: {','.join(BENCHMARK_NAMES)}).")
    flags.DEFINE_bool("from_json", False, "Do not run anything: render from the JSON files "
                      "already in --work_dir.")
    flags.DEFINE_string("python", sys.executable, "Interpreter that runs the benchmarks.")
    return flags.FLAGS


def main(argv) -> None:
    del argv
    FLAGS = _flag_values
    quick = FLAGS.quick
    work = os.path.abspath(FLAGS.work_dir or os.path.join(
        REPO, "output", "bench-quick" if quick else "bench"))
    output = os.path.abspath(FLAGS.output or (os.path.join(work, "BENCHMARKS.md") if quick
                                              else os.path.join(REPO, "BENCHMARKS.md")))
    unknown = set(FLAGS.only or []) - set(BENCHMARK_NAMES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}: expected {BENCHMARK_NAMES}")
    os.makedirs(work, exist_ok=True)
    python = FLAGS.python
    to_run = [] if FLAGS.from_json else (FLAGS.only or BENCHMARK_NAMES)
    report_cmd = shlex.join([_rel(python), "bench/report.py", *sys.argv[1:]])

    # environment.json keeps the machine, versions, date and commands of the last runs, so a
    # partial run (--only) or --from_json renders every benchmark with what produced it.
    env_path = os.path.join(work, "environment.json")
    env = {}
    if os.path.exists(env_path):
        with open(env_path, encoding="utf-8") as f:
            env = json.load(f)
    if to_run or not env:
        env.update(machine=machine_info(), versions=software_versions(python), quick=quick,
                   date=datetime.datetime.now(datetime.timezone.utc).strftime(
                       "%Y-%m-%d %H:%M UTC"))
    env.setdefault("commands", {})
    env.setdefault("durations_s", {})
    env.setdefault("load_before", {})

    results = []
    for name, title, cmd in benchmark_commands(python, work, quick):
        json_path = os.path.join(work, name + ".json")
        item = {"name": name, "title": title}
        if name in to_run:
            if os.path.exists(json_path):
                os.remove(json_path)
            print(f"\n=== {name}: {shlex.join(cmd)}", flush=True)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            rc, seconds, last = run_benchmark(cmd, os.path.join(work, name + ".log"))
            print(f"=== {name}: exit {rc} after {seconds:.0f} s", flush=True)
            env["commands"][name] = shlex.join(cmd)
            env["durations_s"][name] = round(seconds, 1)
            env["load_before"][name] = load
            if rc != 0:
                item["error"] = f"exit status {rc}: {last[:300]}"
        if os.path.exists(json_path) and "error" not in item:
            with open(json_path, encoding="utf-8") as f:
                item["data"] = json.load(f)
            env["commands"].setdefault(name, shlex.join(["python", *item["data"]["command"]]))
        elif "error" not in item:
            item["error"] = f"no results ({_rel(json_path)} missing)"
        results.append(item)
    if to_run:
        with open(env_path, "w", encoding="utf-8") as f:
            json.dump(env, f, indent=1)
    commands = [f"# this file: {report_cmd}",
                *[env["commands"][r["name"]] for r in results if r["name"] in env["commands"]]]
    text = render(results, env["machine"], env["versions"], commands, env.get("quick", quick),
                  env["date"], env["durations_s"], env["load_before"])
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    ran = sum(env["durations_s"].get(name, 0) for name in to_run)
    print(f"\nwrote {_rel(output)}" + (f" ({ran:.0f} s of benchmarks)" if to_run else ""))
    failed = [r["name"] for r in results if "data" not in r and r["name"] in to_run]
    if failed:
        print(f"not measured: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    from absl import app

    _flag_values = _define_flags()
    app.run(main)
