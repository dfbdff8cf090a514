"""bench/report.py: BENCHMARKS.md from the benchmarks' JSON (structure only, never timings)."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(REPO, "bench", "report.py")
TITLES = ["Measured peak (large GEMMs) (`peak`)", "Tokenization + packing (`tokenization`)", "create_pretraining_data (`pretraining_data`)",
          "Pretraining step (`pretraining`)", "Fine-tuning step (classifier) (`finetuning`)",
          "Fine-tuning step (token classifier, NER) (`finetuning_ner`)",
          "Fine-tuning step (span QA, seq 384) (`finetuning_qa`)",
          "One MRPC epoch, fine-tuning wall-clock (`finetuning_epoch`)",
          "Serving (strings in → classifier outputs) (`serving`)",
          "Serving NER (strings in → entities) (`serving_ner`)",
          "Serving (question, context → answer) (`serving_qa`)"]
TABLE_HEADER = "| implementation |"
COLUMNS = ["best", "median", "speed-up of ours (median)"]


def _row(impl, metric, unit, values, better="higher", ours=False, group="", flops=None,
         peak=None, note=None):
    return {"impl": impl, "ours": ours, "group": group, "metric": metric, "unit": unit,
            "better": better, "values": values, "flops_per_item": flops, "peak_flops": peak,
            "note": note}


def _canned_results() -> dict:
    """One JSON per benchmark, in the format the bench scripts write."""
    train = [_row("bert_tf", "training throughput", "examples/s", [2.0, 2.5, 2.4], ours=True,
                  group="float32", flops=70e9, peak=0.33e12),
             _row("torch", "training throughput", "examples/s", [2.0, 2.0, 2.2],
                  group="float32", flops=70e9, peak=0.33e12),
             _row("keras_hub", "training throughput", "examples/s", [], group="float32",
                  note="ImportError: no module")]
    serving = [_row("bert_tf", "latency p50", "ms", [100.0, 110.0], "lower", True, "float32"),
               _row("torch", "latency p50", "ms", [120.0, 130.0], "lower", False, "float32"),
               _row("bert_tf", "throughput at batch 32", "sequences/s", [10.0, 11.0], ours=True,
                    group="float32", flops=22.4e9, peak=0.33e12),
               _row("torch", "throughput at batch 32", "sequences/s", [9.0, 9.5],
                    group="float32", flops=22.4e9, peak=0.33e12),
               _row("tflite, quantize=dynamic_int8", "file size", "MB", [110.0], None,
                    group="float32")]
    peak = [_row("tf matmul", "matmul 4096×4096×4096", "TFLOP/s", [0.2, 0.25], ours=True,
                 group="float32")]
    return {
        "peak": peak,
        "tokenization": [_row("ours", "throughput", "sentences/s", [1e5, 1.1e5], ours=True),
                         _row("rust", "throughput", "sentences/s", [4e4, 3e4])],
        "pretraining_data": [_row("ours, later calls", "throughput", "instances/s", [7e4],
                                  ours=True),
                             _row("ours, first call", "throughput", "instances/s", [5e4],
                                  ours=True),
                             _row("reference", "throughput", "instances/s", [6e3])],
        "pretraining": train, "finetuning": train, "serving": serving,
        "finetuning_ner": train, "finetuning_qa": train, "serving_ner": serving,
        "serving_qa": serving,
        "finetuning_epoch": [
            _row("bert_tf", "one epoch + dev eval, process wall-clock", "s", [60.0], "lower",
                 True, "float32"),
            _row("torch", "one epoch + dev eval, process wall-clock", "s", [90.0], "lower",
                 False, "float32")],
    }


def _check_markdown(text: str) -> None:
    for section in ("# Benchmarks", "## Machine", "## Software", "## Commands",
                    "| CPU |", "| cores |", "| memory |", "| tensorflow |", "| keras-hub |",
                    "| torch |", "| transformers |", "| tokenizers |", "```bash"):
        assert section in text, section
    for title in TITLES:
        assert f"## {title}" in text, title
        body = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
        assert TABLE_HEADER in body, title
        header = next(line for line in body.splitlines() if line.startswith(TABLE_HEADER))
        for column in COLUMNS:
            assert f"| {column} |" in header, (title, column)
        if "Pretraining" in title or "Fine-tuning" in title or "Serving" in title:
            assert "| MFU (best) | MFU (median) |" in header, title


def test_report_renders_from_json(tmp_path):
    for name, rows in _canned_results().items():
        data = {"benchmark": name, "description": f"{name} settings", "rows": rows,
                "command": [f"bench/{name}.py", "--json_output=x.json"], "settings": {},
                "info": {"peak_flops": {"float32": 0.25e12}} if name == "peak" else {},
                "date": "2026-01-01T00:00:00+00:00"}
        (tmp_path / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    output = tmp_path / "BENCHMARKS.md"
    proc = subprocess.run([sys.executable, REPORT, "--from_json", f"--work_dir={tmp_path}",
                           f"--output={output}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = output.read_text(encoding="utf-8")
    _check_markdown(text)
    assert "Quick mode" not in text
    # Ratios from the medians: the speed-up of ours over each peer (> 1: ours faster).
    assert "| rust | throughput | sentences/s | 2 | 40,000 | 35,000 | 3.00× |" in text
    assert "11.67× (ours, later calls); 8.33× (ours, first call)" in text
    assert "| torch | float32 | latency p50 | ms | 2 | 120.0 | 125.0 | 1.19× |" in text
    assert "ImportError: no module" in text  # a peer that could not run says why
    assert "python bench/serving.py --json_output=x.json" in text
    # MFU against the nominal peak and against the one bench/peak.py measured (float32 only).
    assert "measured by bench/peak.py in this run (large GEMMs through TensorFlow's oneDNN " \
        "kernels) fp32 0.25 TFLOP/s." in text
    assert "| MFU (best) | MFU (median) | MFU of measured peak (best) | MFU of measured peak " \
        "(median) |" in text
    assert "| bert_tf (ours) | float32 | training throughput | examples/s | 3 | 2.50 | 2.40 | — " \
        "| 53.0% | 50.9% | 70.0% | 67.2% |" in text


@pytest.mark.slow  # runs every benchmark with tiny settings: minutes on 2 cores, not 60 s
@pytest.mark.timeout(1800)
def test_quick_report_end_to_end(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    proc = subprocess.run([sys.executable, REPORT, "--quick", f"--work_dir={tmp_path}",
                           f"--output={output}"], capture_output=True, text=True, timeout=1700,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = output.read_text(encoding="utf-8")
    _check_markdown(text)
    assert "Quick mode" in text and "Not measured" not in text
    for name in ("peak", "tokenization", "pretraining_data", "pretraining", "finetuning",
                 "finetuning_ner", "finetuning_qa", "finetuning_epoch", "serving", "serving_ner",
                 "serving_qa"):
        data = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert data["rows"] and any(row["ours"] and row["values"] for row in data["rows"])
