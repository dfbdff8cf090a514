"""Debugging CLI: tokenize a text file with the in-graph tokenizer, one output line per input line.

    python -m bert_tf.text.tokenize --vocab_file=vocab.txt --do_lower_case=true \
        --input_file=in.txt --output_file=pieces.txt [--ids]

Each output line holds the line's WordPiece pieces (or ids with --ids) joined by single spaces,
without [CLS]/[SEP]; an empty or whitespace-only line gives an empty line.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import tensorflow as tf

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
    """Tokenizes `input_file` (UTF-8; invalid bytes dropped) into `output_file`. Returns lines."""
    input_file, output_file = os.fspath(input_file), os.fspath(output_file)
    if not tf.io.gfile.exists(input_file):
        raise FileNotFoundError(f"--input_file not found: {input_file}")
    with tf.io.gfile.GFile(input_file, "rb") as f:
        # Split on \n only (like reading lines), keep each line's bytes; the tokenizer cleans them.
        lines = [line.rstrip(b"\r") for line in f.read().split(b"\n")]
    if lines and lines[-1] == b"":
        lines.pop()
    count = 0
    with tf.io.gfile.GFile(output_file, "w") as out:
        for text in tokenize_lines(tokenizer, lines, ids):
            out.write(text + "\n")
            count += 1
    return count


def main(argv) -> None:
    from absl import flags, logging

    del argv
    f = flags.FLAGS
    tokenizer = BertTokenizer(f.vocab_file, do_lower_case=f.do_lower_case)
    count = tokenize_file(tokenizer, f.input_file, f.output_file, ids=f.ids)
    logging.info("tokenized %d lines into %s", count, f.output_file)


if __name__ == "__main__":
    from absl import flags

    from bert_tf.cli import common as cli

    flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt.")
    flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased model).")
    flags.DEFINE_string("input_file", None, "Text file to tokenize, one text per line.")
    flags.DEFINE_string("output_file", None, "Where to write one tokenized line per input line.")
    flags.DEFINE_bool("ids", False, "Write vocab ids instead of wordpieces.")
    flags.mark_flags_as_required(["vocab_file", "input_file", "output_file"])
    cli.run(main)
