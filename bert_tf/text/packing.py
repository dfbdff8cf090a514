"""Packing token lists into BERT inputs: `[CLS] A [SEP] (B [SEP])`, truncation, padding.

Pure-Python version, used by the feature-extraction job; it follows Google's run_classifier /
extract_features rules exactly.
"""
from __future__ import annotations

from typing import Sequence

CLS, SEP = "[CLS]", "[SEP]"


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Truncates the pair in place to at most `max_length` tokens in total, one token at a time
    from the end of the longer list (from B when they are equally long), as Google's
    `_truncate_seq_pair`."""
    while len(tokens_a) + len(tokens_b) > max_length:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        longer.pop()


def pack_tokens(tokens_a: Sequence[str], tokens_b: Sequence[str] | None, seq_length: int
                ) -> tuple[list[str], list[int]]:
    """Returns (tokens, input_type_ids) for `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, with A and B
    truncated to fit `seq_length` (not padded)."""
    min_length = 3 if tokens_b is not None else 2
    if seq_length < min_length:
        raise ValueError(f"seq_length must be at least {min_length} to hold [CLS]/[SEP]"
                         f"{' for a text pair' if tokens_b is not None else ''}, got {seq_length}")
    tokens_a = list(tokens_a)
    if tokens_b is not None:
        tokens_b = list(tokens_b)
        truncate_seq_pair(tokens_a, tokens_b, seq_length - 3)
    else:
        del tokens_a[seq_length - 2:]
    tokens = [CLS, *tokens_a, SEP]
    type_ids = [0] * len(tokens)
    if tokens_b is not None:
        tokens += [*tokens_b, SEP]
        type_ids += [1] * (len(tokens_b) + 1)
    return tokens, type_ids
