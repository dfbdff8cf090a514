"""Entity-level metrics: conlleval's chunk rules on hand-made cases (counts reasoned from the
rules of conlleval.pl's startOfChunk / endOfChunk), micro and per-type scores, token accuracy."""
from __future__ import annotations

import pytest

from bert_tf.data.ner_metrics import Counts, entity_spans, ner_metrics


@pytest.mark.parametrize("tags,spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["I-PER", "I-PER"], [("PER", 0, 2)]),                     # I at the start opens an entity
    (["O", "I-ORG", "I-ORG"], [("ORG", 1, 3)]),                # I after O opens one
    (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),      # I of another type opens one
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),      # B always opens one
    (["I-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),  # IOB1 adjacent entities
    (["B-X", "E-X", "S-X", "O", "E-X", "I-X"],                 # IOBES: E/S close, E/I after
     [("X", 0, 2), ("X", 2, 3), ("X", 4, 5), ("X", 5, 6)]),    # O/E open
    (["S-X", "I-X", "E-X"], [("X", 0, 1), ("X", 1, 3)]),
    (["B-creative-work", "I-creative-work"], [("creative-work", 0, 2)]),  # type = after 1st dash
    (["O", "O"], []),
    ([], []),
])
def test_entity_spans_follow_conlleval(tags, spans):
    assert entity_spans(tags) == spans


def test_micro_per_type_and_accuracy():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "B-ORG", "I-ORG", "I-ORG"], ["B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["O", "I-ORG", "I-ORG", "B-ORG"], ["I-LOC"]]
    # gold: PER(0,2) LOC(3,4) | ORG(1,4) | LOC(0,1)   -> 4 entities
    # pred: PER(0,2) ORG(3,4) | ORG(1,3) ORG(3,4) | LOC(0,1) -> 5 entities; correct: PER, LOC(s3)
    m = ner_metrics(gold, pred)
    assert m.overall == Counts(correct=2, predicted=5, gold=4)
    assert m.overall.precision == pytest.approx(0.4)
    assert m.overall.recall == pytest.approx(0.5)
    assert m.overall.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert m.per_type == {"LOC": Counts(1, 1, 2), "ORG": Counts(0, 3, 1), "PER": Counts(1, 1, 1)}
    assert m.per_type["LOC"].f1 == pytest.approx(2 / 3)
    assert m.per_type["ORG"].f1 == 0.0
    assert (m.correct_tokens, m.tokens) == (6, 10)  # B-X vs I-X is a wrong tag
    results = m.as_dict()
    assert results["eval_f1"] == pytest.approx(m.overall.f1)
    assert results["eval_accuracy"] == pytest.approx(0.6)
    assert results["eval_f1_PER"] == 1.0
    assert results["eval_num_gold_entities"] == 4


def test_sentence_boundary_ends_entities_and_partial_spans_are_wrong():
    # The B-PER at the end of sentence 1 and the I-PER opening sentence 2 are two entities.
    m = ner_metrics([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["I-PER", "O"]])
    assert m.overall == Counts(2, 2, 2)
    # Overlapping but not identical spans, and right span with the wrong type, are not correct.
    m = ner_metrics([["B-LOC", "I-LOC", "I-LOC", "B-PER"]], [["B-LOC", "I-LOC", "O", "B-ORG"]])
    assert m.overall == Counts(0, 2, 2)
    assert m.overall.f1 == 0.0


def test_empty_and_no_entities():
    m = ner_metrics([], [])
    assert (m.overall.precision, m.overall.recall, m.overall.f1, m.accuracy) == (0, 0, 0, 0)
    m = ner_metrics([["O"]], [["B-X"]])
    assert m.overall == Counts(0, 1, 0) and m.accuracy == 0.0


def test_length_mismatch_is_a_bug():
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        ner_metrics([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        ner_metrics([["O", "O"]], [["O"]])
