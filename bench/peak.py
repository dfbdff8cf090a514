"""The machine's achievable matmul rate: large fp32 and bf16 GEMMs through TensorFlow (oneDNN).

    .venv/bin/python bench/peak.py [--sizes=1024,2048,4096] [--repeats=5]
        [--precisions=float32,mixed_bfloat16] [--json_output=...]

The nominal peak (cores × clock × FLOPs per cycle) is an upper bound no program reaches: clocks
drop under AVX-512/AMX load, and memory, not the multiplier, limits small products. This script
measures what a large square `tf.linalg.matmul` ([n, n] × [n, n], 2·n³ FLOPs) reaches on this
machine in float32 and in bfloat16 (the dtype `mixed_bfloat16` multiplies in; on CPUs with AMX
or AVX-512-bf16 oneDNN runs it on those units), best of --repeats calls after a warm-up, over
every size in --sizes. `bench/report.py` runs it first and reports every MFU against both the
nominal and this measured peak, so the distance to the limit is a measured number.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

flags.DEFINE_list("sizes", ["1024", "2048", "4096"], "Square matrix sizes n to multiply.")
flags.DEFINE_integer("repeats", 5, "Timed calls per size (the best counts).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to measure.")
flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                    "format) to this path.")
FLAGS = flags.FLAGS

DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
IMPL = "TensorFlow tf.linalg.matmul (oneDNN)"


def matmul_rates(n: int, dtype: str, repeats: int) -> list[float]:
    """FLOP/s of `repeats` timed [n, n] × [n, n] products in `dtype` (after one warm-up call)."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), dtype)

    # A reduction of the product forces it to run in full without copying [n, n] back to NumPy.
    @tf.function(jit_compile=False)
    def product(x, y):
        return tf.reduce_sum(tf.cast(tf.linalg.matmul(x, y)[:1, :1], tf.float32))

    product(a, b).numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        rates.append(2.0 * n ** 3 / (time.perf_counter() - start))
    return rates


def measured_peaks(results: dict[tuple[str, int], list[float]]) -> dict[str, float]:
    """The best rate per precision over all sizes (what report.py uses as the measured peak)."""
    peaks: dict[str, float] = {}
    for (precision, _), rates in results.items():
        if rates:
            peaks[precision] = max(peaks.get(precision, 0.0), max(rates))
    return peaks


def main(argv) -> None:
    del argv
    import tensorflow as tf

    sizes = [int(s) for s in FLAGS.sizes]
    results: dict[tuple[str, int], list[float]] = {}
    for precision in FLAGS.precisions:
        for n in sizes:
            results[(precision, n)] = matmul_rates(n, DTYPES[precision], FLAGS.repeats)
            print(f"{precision:>15} n={n:5d}: best {max(results[(precision, n)]) / 1e12:.3f} "
                  f"TFLOP/s", flush=True)
    peaks = measured_peaks(results)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)")
    print("measured peak: " + ", ".join(f"{p} {v / 1e12:.3f} TFLOP/s" for p, v in peaks.items()))
    if FLAGS.json_output:
        from report import result_row, write_results

        rows = [result_row(IMPL, f"matmul {n}×{n}×{n}", "TFLOP/s",
                           [r / 1e12 for r in rates], better="higher", ours=True,
                           group=precision)
                for (precision, n), rates in results.items()]
        write_results(FLAGS.json_output, "peak", rows,
                      info={"peak_flops": peaks, "tensorflow": tf.__version__,
                            "TF_ENABLE_ONEDNN_OPTS": onednn},
                      description="The measured peak: best rate of large square matmuls "
                                  "through TensorFlow's oneDNN kernels, float32 and bfloat16 "
                                  "(group mixed_bfloat16); every MFU below is also given "
                                  "against it")


if __name__ == "__main__":
    app.run(main)
