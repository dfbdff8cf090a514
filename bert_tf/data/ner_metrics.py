"""Entity-level precision / recall / F1 for token classification, counted as conlleval counts.

conlleval (the CoNLL-2000/2003 shared tasks' Perl script) reads each tag as a prefix (`B`, `I`,
`E`, `S`, or `O`) and a type, and decides chunk boundaries token by token:

- a chunk starts at `B-X` and `S-X`; at `I-X`/`E-X` after `O`, after `E-`/`S-`, or after another
  type (so an `I-X` with no `B-X` before it still starts an entity);
- a chunk ends before `B-`/`S-`/`O`, after `E-`/`S-`, and before a tag of another type;
- a sentence boundary ends every chunk.

A predicted chunk is correct when a gold chunk has exactly its span and type. Precision =
correct / predicted chunks, recall = correct / gold chunks, F1 their harmonic mean (micro over
types; 0 when undefined). Token accuracy compares the full tags (`B-X` is not `I-X`).
Unlike conlleval's printout (percentages), the values here are fractions in [0, 1].

    >>> entity_spans(["I-PER", "I-PER", "O", "B-LOC", "I-ORG"])
    [('PER', 0, 2), ('LOC', 3, 4), ('ORG', 4, 5)]
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Sequence


def _parse(tag: str) -> tuple[str, str]:
    """conlleval's split: "B-PER" → ("B", "PER"), "O" → ("O", ""); the type is everything after
    the first dash."""
    if tag == "O" or not tag:
        return "O", ""
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type


def _ends(prev: str, tag: str, prev_type: str, tag_type: str) -> bool:
    """conlleval's endOfChunk: does the chunk that `prev` is in end before `tag`?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != tag_type


def _starts(prev: str, tag: str, prev_type: str, tag_type: str) -> bool:
    """conlleval's startOfChunk: does a chunk start at `tag`?"""
    if tag in ("B", "S"):
        return True
    if tag in ("I", "E") and prev in ("E", "S", "O"):
        return True
    return tag != "O" and prev_type != tag_type


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence as (type, start, end) with `end` exclusive, by conlleval's
    rules (any of IOB1, IOB2, IOBES tags)."""
    spans, start, current = [], None, ""
    prev, prev_type = "O", ""
    for i, tag in enumerate(tags):
        prefix, entity_type = _parse(tag)
        if start is not None and _ends(prev, prefix, prev_type, entity_type):
            spans.append((current, start, i))
            start = None
        if _starts(prev, prefix, prev_type, entity_type):
            start, current = i, entity_type
        prev, prev_type = prefix, entity_type
    if start is not None:
        spans.append((current, start, len(tags)))
    return spans


@dataclasses.dataclass(frozen=True)
class Counts:
    """conlleval's counts for one type (or all): correct, predicted and gold chunks."""

    correct: int = 0
    predicted: int = 0
    gold: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclasses.dataclass(frozen=True)
class NerMetrics:
    """Entity-level counts overall and per type, plus token accuracy."""

    overall: Counts
    per_type: dict[str, Counts]
    correct_tokens: int
    tokens: int

    @property
    def accuracy(self) -> float:
        return self.correct_tokens / self.tokens if self.tokens else 0.0

    def as_dict(self, prefix: str = "eval_") -> dict[str, float]:
        """Flat results for eval_results.txt: `eval_precision`, `eval_recall`, `eval_f1`,
        `eval_accuracy`, `eval_f1_<type>` per type (plus the counts)."""
        out = {f"{prefix}precision": self.overall.precision, f"{prefix}recall": self.overall.recall,
               f"{prefix}f1": self.overall.f1, f"{prefix}accuracy": self.accuracy,
               f"{prefix}num_gold_entities": self.overall.gold,
               f"{prefix}num_predicted_entities": self.overall.predicted,
               f"{prefix}num_correct_entities": self.overall.correct}
        for entity_type, counts in sorted(self.per_type.items()):
            out[f"{prefix}precision_{entity_type}"] = counts.precision
            out[f"{prefix}recall_{entity_type}"] = counts.recall
            out[f"{prefix}f1_{entity_type}"] = counts.f1
        return out


def ner_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> NerMetrics:
    """Entity-level metrics over sentences, as conlleval computes them.

    Args:
        gold: per sentence, the gold tags.
        predicted: per sentence, the predicted tags (same lengths as `gold`).

    Returns:
        NerMetrics. Raises ValueError if the sentence counts or lengths differ.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct, found_gold, found_predicted = Counter(), Counter(), Counter()
    correct_tokens = tokens = 0
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        gold_spans, predicted_spans = set(entity_spans(g)), set(entity_spans(p))
        found_gold.update(t for t, _, _ in gold_spans)
        found_predicted.update(t for t, _, _ in predicted_spans)
        correct.update(t for t, _, _ in gold_spans & predicted_spans)
        correct_tokens += sum(a == b for a, b in zip(g, p))
        tokens += len(g)
    types = sorted(set(found_gold) | set(found_predicted))
    per_type = {t: Counts(correct[t], found_predicted[t], found_gold[t]) for t in types}
    overall = Counts(sum(correct.values()), sum(found_predicted.values()),
                     sum(found_gold.values()))
    return NerMetrics(overall, per_type, correct_tokens, tokens)
