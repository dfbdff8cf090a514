"""bench/real_text.py: the benchmarks' real texts (WNUT-17 for bench/serving_ner.py, SQuAD
questions for bench/serving_qa.py) and the same-length fallbacks used when ../shared/data is
absent."""
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

WNUT17_DEV = SHARED_DATA / "ner" / "wnut17" / "emerging.dev.conll"


@pytest.mark.skipif(not WNUT17_DEV.is_file(), reason="../shared/data/ner/wnut17 not present")
def test_wnut17_dev_sentences_as_texts():
    items, labels, source = real_text.load("wnut17")
    # The published counts of the dev file: 1,009 sentences, 15,733 tokens, 836 entities.
    assert len(items) == len(labels) == 1009
    assert sum(len(text.split(" ")) for text, in items) == 15733
    assert all(len(text.split(" ")) == len(tags.split(" ")) for (text,), tags in zip(items, labels))
    assert sum(tag.startswith("B-") for tags in labels for tag in tags.split(" ")) == 836
    assert items[1] == ("You should ' ve stayed on Redondo Beach Blvd . you were in the "
                        "borderlines of Gardena / Compton",)
    assert labels[1].split(" ")[6:9] == ["B-location", "I-location", "I-location"]
    assert source == "WNUT-17 emerging.dev (1009 sentences)"
    # The tags of the file are the labels every NER benchmark uses.
    assert {tag for tags in labels for tag in tags.split(" ")} <= set(real_text.WNUT17_LABELS)
    # The fallback's ventiles are this file's word counts.
    counts = sorted(len(text.split(" ")) for text, in items)
    assert [counts[q * (len(counts) - 1) // 20] for q in range(21)] == \
        real_text.WORD_VENTILES["ner/wnut17"]


def test_wnut17_fallback_has_the_real_lengths(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_TF_SHARED_DATA", str(tmp_path))
    items, labels, source = real_text.load("wnut17")
    assert len(items) == real_text.FALLBACK_SIZES["wnut17"] == 1009
    counts = [len(text.split()) for text, in items]
    ventiles = real_text.WORD_VENTILES["ner/wnut17"]
    assert ventiles[0] <= min(counts) and max(counts) <= ventiles[-1]
    assert abs(sorted(counts)[len(counts) // 2] - ventiles[10]) <= 2
    assert labels == [" ".join(["O"] * n) for n in counts]
    assert source.startswith("stdlib docstrings cut to WNUT-17's word counts (1009 sentences; ")
    assert str(tmp_path) in source


def test_glue_sources_keep_their_names(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_TF_SHARED_DATA", str(tmp_path))
    items, labels, source = real_text.load("mrpc")
    assert len(items) == 408 and all(len(item) == 2 for item in items)
    assert labels[:4] == ["0", "1", "0", "1"]
    assert source.startswith("stdlib docstrings cut to GLUE MRPC's word counts (408 pairs; ")
    with pytest.raises(ValueError, match="unknown dataset 'conll'"):
        real_text.load("conll")


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
