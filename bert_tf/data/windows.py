"""Overlapping windows over a token sequence that is longer than the model's input, and which
window gives each token its best context — shared by question answering and token
classification.

The rules are those of Google's run_squad.py: windows of at most `max_tokens` tokens start at 0
and advance by `min(window_length, doc_stride)` until one reaches the end; a token is scored in a
window by `min(left context, right context) + 0.01 * window_length`, and the window with the
highest score (the first on ties) is the token's "max context" window.

    >>> doc_spans(10, max_tokens=4, doc_stride=2)
    [DocSpan(start=0, length=4), DocSpan(start=2, length=4), DocSpan(start=4, length=4), DocSpan(start=6, length=4)]
    >>> [max_context_span(doc_spans(10, 4, 2), p) for p in range(10)]
    [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from bert_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class DocSpan:
    """One window: tokens [start, start + length) of the document."""

    start: int
    length: int

    @property
    def end(self) -> int:
        """One past the last token of the window."""
        return self.start + self.length


def doc_spans(num_tokens: int, max_tokens: int, doc_stride: int) -> list[DocSpan]:
    """The windows covering `num_tokens` tokens.

    Args:
        num_tokens: length of the document in tokens (0 gives one empty window, so every document
            yields at least one model input).
        max_tokens: the most tokens one window holds (the model input minus question/special
            tokens).
        doc_stride: how far the next window starts after the current one's start.

    Returns:
        The windows in order; consecutive windows overlap by `max_tokens - doc_stride` tokens when
        `doc_stride < max_tokens`.
    """
    if max_tokens < 1:
        raise InputError(f"a window must hold at least one token, got max_tokens={max_tokens} "
                         "(raise --max_seq_length or shorten --max_query_length)")
    if doc_stride < 1:
        raise InputError(f"--doc_stride must be positive, got {doc_stride}")
    spans, start = [], 0
    while True:
        length = min(num_tokens - start, max_tokens)
        spans.append(DocSpan(start, length))
        if start + length >= num_tokens:
            return spans
        start += min(length, doc_stride)


def max_context_span(spans: Sequence[DocSpan], position: int) -> int:
    """The index of the window in which token `position` has the most context on both sides."""
    best, best_score = -1, None
    for i, span in enumerate(spans):
        if not span.start <= position < span.end:
            continue
        score = min(position - span.start, span.end - 1 - position) + 0.01 * span.length
        if best_score is None or score > best_score:
            best, best_score = i, score
    if best < 0:
        raise ValueError(f"token {position} is in none of the windows")
    return best
