"""Tokenize a text file with the in-graph tokenizer, one output line per input line.

    python -m bert_tf.cli.tokenize --vocab_file=vocab.txt --do_lower_case=true \
        --input_file=in.txt --output_file=pieces.txt [--ids]

Each output line holds the line's WordPiece pieces (or ids with --ids) joined by single spaces,
without [CLS]/[SEP]; an empty or whitespace-only line gives an empty line.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import tensorflow as tf

from bert_tf.io import atomic_output, read_input_bytes, split_lines
from bert_tf.text.tokenizer import BertTokenizer

_BATCH_LINES = 1024


def tokenize_lines(tokenizer: BertTokenizer, lines: Iterable[str], ids: bool = False,
                   batch_lines: int = _BATCH_LINES) -> Iterator[str]:
    """Yields, per input line, its pieces (or ids) joined by single spaces."""
    run = tf.function(tokenizer.tokenize if ids else tokenizer.tokenize_to_pieces,
                      input_signature=[tf.TensorSpec([None], tf.string)])
    batch: list[str] = []

    def flush():
        for row in run(tf.constant(batch)).to_list():
            yield " ".join(str(x) if ids else x.decode("utf-8") for x in row)

    for line in lines:
        batch.append(line)
        if len(batch) == batch_lines:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def tokenize_file(tokenizer: BertTokenizer, input_file: str | os.PathLike,
                  output_file: str | os.PathLike, ids: bool = False) -> int:
    """Tokenizes `input_file` (UTF-8, invalid bytes dropped; lines split on "\\n" only) into
    `output_file` (written whole or not at all). Returns the number of lines."""
    lines = [line.rstrip(b"\r") for line in split_lines(read_input_bytes(input_file))]
    count = 0
    with atomic_output(output_file) as out:
        for text in tokenize_lines(tokenizer, lines, ids):
            out.write(text + "\n")
            count += 1
    return count
