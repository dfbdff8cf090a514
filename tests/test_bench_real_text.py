"""bench/real_text.py's SQuAD questions: the real dev set, and the fallback of the same lengths."""
import json
import os
import statistics
import sys

import numpy as np
import pytest

from shared_data import SHARED_DATA

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

import real_text  # noqa: E402

SQUAD_DEV = SHARED_DATA.joinpath(*real_text.SQUAD_DEV)
needs_squad = pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"{SQUAD_DEV} not present")


def _dev_questions() -> list[tuple[str, str]]:
    with open(SQUAD_DEV, encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [(qa["question"], paragraph["context"]) for article in data
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


@needs_squad
def test_load_squad_spreads_over_the_dev_set(monkeypatch):
    monkeypatch.setenv("BERT_TF_SHARED_DATA", str(SHARED_DATA))
    everything = _dev_questions()
    items, source = real_text.load_squad(40)
    assert items == [everything[i * len(everything) // 40] for i in range(40)]
    assert len({context for _, context in items}) > 30  # many articles, not one paragraph
    assert source.startswith("SQuAD v2.0 dev (40 of its 11,873 questions")
    assert "unanswerable" in source


@needs_squad
def test_fallback_ventiles_are_the_dev_sets():
    everything = _dev_questions()
    for column, name in ((0, "question"), (1, "context")):
        counts = [len(item[column].split()) for item in everything]
        expected = [int(round(v)) for v in np.percentile(counts, range(0, 101, 5))]
        assert real_text.SQUAD_WORD_VENTILES[name] == expected, name


def test_load_squad_fallback_has_squads_lengths(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_TF_SHARED_DATA", str(tmp_path))  # no squad/ there
    items, source = real_text.load_squad(400)
    assert len(items) == 400 and "not found" in source
    for name, texts in (("question", [q[:-1] for q, _ in items]),
                        ("context", [c for _, c in items])):
        ventiles = real_text.SQUAD_WORD_VENTILES[name]
        counts = [len(t.split()) for t in texts]
        assert ventiles[0] <= min(counts) and max(counts) <= ventiles[-1], name
        # The median of the drawn counts is the distribution's (within sampling noise).
        assert abs(statistics.median(counts) - ventiles[10]) <= 0.1 * ventiles[10] + 1, name
    assert all(q.endswith("?") for q, _ in items)
    assert real_text.load_squad(400) == (items, source)  # deterministic
