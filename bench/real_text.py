"""Real text for the benchmarks: GLUE SST-2 dev sentences and MRPC pairs from ../shared/data.

Real inputs are short (SST-2 dev: about 20 words, 25 WordPieces a sentence; MRPC: two sentences of
about 19 words each), which is what decides the cost of padding. The GLUE files are read with
bert_tf's own GLUE processors from `$BERT_TF_SHARED_DATA/glue/<task>` (default ../shared/data
beside the checkout, as tests/shared_data.py). When they are absent, `load` falls back to lines
of Python's standard-library docstrings (bench/corpus.py) cut to word counts drawn from the real
sets' word-count distribution (its ventiles, below), so the lengths — and so the timings — match.
"""
from __future__ import annotations

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (GLUE directory, split, pairs?) per dataset name.
DATASETS = {"sst2": ("SST-2", "dev", False), "mrpc": ("MRPC", "dev", True),
            "mrpc_train": ("MRPC", "train", True)}
# Words per sentence at the 0th, 5th, ..., 100th percentile (SST-2 dev: 872 sentences; MRPC dev:
# both sentences of its 408 pairs; MRPC train has the same distribution).
WORD_VENTILES = {
    "SST-2": [2, 6, 9, 10, 11, 13, 14, 15, 16, 18, 19, 20, 21, 23, 24, 26, 27, 29, 32, 34, 47],
    "MRPC": [7, 11, 12, 14, 14, 15, 16, 17, 17, 18, 19, 20, 21, 21, 22, 23, 24, 25, 26, 28, 30],
}
FALLBACK_SIZES = {"sst2": 872, "mrpc": 408, "mrpc_train": 3668}


def glue_dir() -> str:
    shared = os.environ.get("BERT_TF_SHARED_DATA",
                            os.path.join(os.path.dirname(REPO), "shared", "data"))
    return os.path.join(shared, "glue")


def _glue_examples(name: str):
    from bert_tf.data.glue import get_processor

    directory, split, _ = DATASETS[name]
    path = os.path.join(glue_dir(), directory)
    if not os.path.exists(os.path.join(path, f"{split}.tsv")):
        return None
    processor = get_processor(directory.lower())
    return getattr(processor, f"get_{split}_examples")(path)


def _word_count(rng: random.Random, ventiles: list[int]) -> int:
    """A word count drawn from the piecewise-linear distribution through the ventiles."""
    u = rng.random() * (len(ventiles) - 1)
    i = min(int(u), len(ventiles) - 2)
    return max(1, round(ventiles[i] + (u - i) * (ventiles[i + 1] - ventiles[i])))


def _fallback(name: str, seed: int = 0) -> list[tuple[str, ...]]:
    from corpus import stdlib_docstring_lines

    directory, _, pairs = DATASETS[name]
    words = " ".join(stdlib_docstring_lines()).split()
    rng = random.Random(seed)
    position = 0

    def sentence():
        nonlocal position
        n = _word_count(rng, WORD_VENTILES[directory])
        if position + n > len(words):
            position = 0
        position += n
        return " ".join(words[position - n:position])

    return [tuple(sentence() for _ in range(2 if pairs else 1))
            for _ in range(FALLBACK_SIZES[name])]


def load(name: str) -> tuple[list[tuple[str, ...]], list[str], str]:
    """(items, labels, source) of dataset `name`: items are (text,) or (text_a, text_b); labels
    the examples' label strings (the fallback's are alternating "0"/"1"); source describes them."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}")
    examples = _glue_examples(name)
    directory, split, pairs = DATASETS[name]
    if examples:
        items = [(e.text_a, e.text_b) if pairs else (e.text_a,) for e in examples]
        return items, [str(e.label) for e in examples], \
            f"GLUE {directory} {split} ({len(items)} {'pairs' if pairs else 'sentences'})"
    items = _fallback(name)
    return items, [str(i % 2) for i in range(len(items))], (
        f"stdlib docstrings cut to GLUE {directory}'s word counts ({len(items)} "
        f"{'pairs' if pairs else 'sentences'}; GLUE data not found in {glue_dir()})")
