"""Real text for the benchmarks: GLUE SST-2 dev sentences, MRPC pairs, WNUT-17 dev sentences,
SQuAD v2.0 dev questions and contexts.

Real inputs are short (SST-2 dev: about 20 words, 25 WordPieces a sentence; MRPC: two sentences of
about 19 words each; WNUT-17 dev: about 16 words of social-media text), which is what decides the
cost of padding. The GLUE files are read with bert_tf's own GLUE processors from
`$BERT_TF_SHARED_DATA/glue/<task>`, WNUT-17 with its CoNLL reader from
`$BERT_TF_SHARED_DATA/ner/wnut17` (default ../shared/data beside the checkout, as
tests/shared_data.py). When they are absent, `load` falls back to lines of Python's
standard-library docstrings (bench/corpus.py) cut to word counts drawn from the real sets'
word-count distribution (its ventiles, below), so the lengths — and so the timings — match.
`load_squad` reads SQuAD v2.0 dev with bert_tf's SQuAD reader and falls back the same way: each
context and question cut to word counts drawn from the real ones'.
"""
from __future__ import annotations

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (directory under the shared data, split, pairs?) per dataset name.
DATASETS = {"sst2": ("glue/SST-2", "dev", False), "mrpc": ("glue/MRPC", "dev", True),
            "mrpc_train": ("glue/MRPC", "train", True),
            "wnut17": ("ner/wnut17", "emerging.dev", False)}
# Words per sentence at the 0th, 5th, ..., 100th percentile (SST-2 dev: 872 sentences; MRPC dev:
# both sentences of its 408 pairs; MRPC train has the same distribution; WNUT-17 dev: 1,009
# sentences).
WORD_VENTILES = {
    "glue/SST-2": [2, 6, 9, 10, 11, 13, 14, 15, 16, 18, 19, 20, 21, 23, 24, 26, 27, 29, 32, 34, 47],
    "glue/MRPC": [7, 11, 12, 14, 14, 15, 16, 17, 17, 18, 19, 20, 21, 21, 22, 23, 24, 25, 26, 28, 30],
    "ner/wnut17": [1, 4, 5, 6, 6, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 26, 30, 38, 82],
}
FALLBACK_SIZES = {"sst2": 872, "mrpc": 408, "mrpc_train": 3668, "wnut17": 1009}
# WNUT-17's IOB2 labels in bert_tf's id order (bert_tf.data.conll.labels_from its training file).
WNUT17_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")
WNUT17_LABELS = ("O",) + tuple(f"{prefix}-{t}" for t in WNUT17_TYPES for prefix in "BI")
SQUAD_DEV = ("squad", "dev-v2.0.rebuilt.json")
# Whitespace words per context and per question at the 0th, 5th, ..., 100th percentile over
# SQuAD v2.0 dev's 11,873 questions (a context counts once per question asked about it).
SQUAD_WORD_VENTILES = {
    "context": [25, 75, 82, 86, 90, 93, 96, 99, 104, 108, 114, 119, 125, 132, 139, 148, 156, 167,
                191, 226, 629],
    "question": [3, 5, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 10, 11, 11, 12, 13, 13, 15, 16, 31],
}


def shared_data_dir() -> str:
    return os.environ.get("BERT_TF_SHARED_DATA",
                          os.path.join(os.path.dirname(REPO), "shared", "data"))


def _glue_examples(name: str):
    """(items, labels) of a GLUE dataset, or None when its file is absent."""
    from bert_tf.data.glue import get_processor

    directory, split, pairs = DATASETS[name]
    path = os.path.join(shared_data_dir(), directory)
    if not os.path.exists(os.path.join(path, f"{split}.tsv")):
        return None
    processor = get_processor(os.path.basename(directory).lower())
    examples = getattr(processor, f"get_{split}_examples")(path)
    return ([(e.text_a, e.text_b) if pairs else (e.text_a,) for e in examples],
            [str(e.label) for e in examples])


def _wnut17_sentences(name: str):
    """(items, labels) of WNUT-17 dev: each sentence's tokens joined with spaces, its IOB2 tags
    joined with spaces; None when the file is absent."""
    from bert_tf.data.conll import read_conll

    directory, split, _ = DATASETS[name]
    path = os.path.join(shared_data_dir(), directory, f"{split}.conll")
    if not os.path.exists(path):
        return None
    sentences = read_conll(path).sentences
    return [(" ".join(s.words),) for s in sentences], [" ".join(s.tags) for s in sentences]


def _word_count(rng: random.Random, ventiles: list[int]) -> int:
    """A word count drawn from the piecewise-linear distribution through the ventiles."""
    u = rng.random() * (len(ventiles) - 1)
    i = min(int(u), len(ventiles) - 2)
    return max(1, round(ventiles[i] + (u - i) * (ventiles[i + 1] - ventiles[i])))


def _docstring_texts(seed: int = 0):
    """A function of word-count ventiles: the next consecutive stdlib docstring words, as many
    as drawn from that distribution."""
    from corpus import stdlib_docstring_lines

    words = " ".join(stdlib_docstring_lines()).split()
    rng = random.Random(seed)
    position = 0

    def text(ventiles: list[int]) -> str:
        nonlocal position
        n = min(_word_count(rng, ventiles), len(words))
        if position + n > len(words):
            position = 0
        position += n
        return " ".join(words[position - n:position])

    return text


def _fallback(name: str, seed: int = 0) -> list[tuple[str, ...]]:
    directory, _, pairs = DATASETS[name]
    sentence = _docstring_texts(seed)
    return [tuple(sentence(WORD_VENTILES[directory]) for _ in range(2 if pairs else 1))
            for _ in range(FALLBACK_SIZES[name])]


def load(name: str) -> tuple[list[tuple[str, ...]], list[str], str]:
    """(items, labels, source) of dataset `name`: items are (text,) or (text_a, text_b); labels
    the examples' label strings (WNUT-17: the sentence's tags joined with spaces; the fallback's
    are alternating "0"/"1", or all "O" tags for WNUT-17); source describes them."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}")
    ner = name == "wnut17"
    loaded = _wnut17_sentences(name) if ner else _glue_examples(name)
    directory, split, pairs = DATASETS[name]
    title = "WNUT-17" if ner else f"GLUE {os.path.basename(directory)}"
    unit = "pairs" if pairs else "sentences"
    if loaded:
        items, labels = loaded
        return items, labels, f"{title} {split} ({len(items)} {unit})"
    items = _fallback(name)
    labels = ([" ".join("O" for _ in item[0].split()) for item in items] if ner
              else [str(i % 2) for i in range(len(items))])
    return items, labels, (f"stdlib docstrings cut to {title}'s word counts ({len(items)} "
                           f"{unit}; {title} data not found in "
                           f"{os.path.join(shared_data_dir(), os.path.dirname(directory))})")


def load_squad(count: int) -> tuple[list[tuple[str, str]], str]:
    """(items, source): `count` (question, context) pairs of SQuAD v2.0 dev, spread evenly over
    the file (so over all its articles), and a description of them. Without the file:
    stdlib docstring words cut to SQuAD's question and context word counts."""
    path = os.path.join(shared_data_dir(), *SQUAD_DEV)
    if os.path.exists(path):
        from bert_tf.data.squad import read_squad_examples

        examples = read_squad_examples(path, is_training=False, version_2_with_negative=True)
        picked = [examples[i * len(examples) // count] for i in range(min(count, len(examples)))]
        return [(e.question_text, e.context_text) for e in picked], (
            f"SQuAD v2.0 dev ({len(picked)} of its {len(examples):,} questions, evenly spaced; "
            f"{sum(e.is_impossible for e in picked)} unanswerable)")
    text = _docstring_texts()
    items = [(text(SQUAD_WORD_VENTILES["question"]) + "?", text(SQUAD_WORD_VENTILES["context"]))
             for _ in range(count)]
    return items, (f"stdlib docstrings cut to SQuAD v2.0 dev's question and context word counts "
                   f"({count} questions; {path} not found)")
