"""Learn a WordPiece vocab.txt from raw text, for pretraining BERT from scratch.

    python -m bert_tf.text.build_vocab --input_file=corpus.txt --vocab_size=8000 \
        --do_lower_case=true --output_file=vocab.txt

Words are split with Google's BERT rules (`basic_tokenize`, the same splitting the tokenizer
applies before WordPiece), counted on all cores, and handed to tf-text's WordPiece learner. The
BERT special tokens come first: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
from typing import Iterable, Sequence

from bert_tf.text.python_tokenizer import basic_tokenize
from bert_tf.text.vocab import DEFAULT_SPECIAL_TOKENS

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
assert set(SPECIAL_TOKENS) == set(DEFAULT_SPECIAL_TOKENS)

_CHUNK_LINES = 2000


def _count_chunk(args: tuple[list[str], bool]) -> collections.Counter:
    lines, do_lower_case = args
    counts: collections.Counter = collections.Counter()
    for line in lines:
        counts.update(basic_tokenize(line, do_lower_case))
    return counts


def _chunks(lines: Iterable[str], do_lower_case: bool):
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == _CHUNK_LINES:
            yield chunk, do_lower_case
            chunk = []
    if chunk:
        yield chunk, do_lower_case


def count_words(lines: Iterable[str], do_lower_case: bool, processes: int | None = None
                ) -> collections.Counter:
    """Counts words after Google's basic tokenization, in `processes` worker processes."""
    processes = processes or os.cpu_count() or 1
    total: collections.Counter = collections.Counter()
    if processes == 1:
        for chunk in _chunks(lines, do_lower_case):
            total.update(_count_chunk(chunk))
        return total
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for counts in pool.imap_unordered(_count_chunk, _chunks(lines, do_lower_case)):
            total.update(counts)
    return total


def learn_vocab(word_counts: collections.Counter, vocab_size: int,
                special_tokens: Sequence[str] = SPECIAL_TOKENS, min_frequency: int = 2,
                max_unique_chars: int = 1000) -> list[str]:
    """tf-text's WordPiece learner over `word_counts`; special tokens first, `##` continuations.

    The result has at most `vocab_size` tokens, including every character of the kept alphabet
    both as a word start and as a `##` continuation.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    if vocab_size <= len(special_tokens):
        raise ValueError(f"vocab_size must exceed the {len(special_tokens)} special tokens, "
                         f"got {vocab_size}")
    if not word_counts:
        raise ValueError("the input has no words to learn a vocab from")
    items = sorted(word_counts.items())
    target = vocab_size
    # tf-text treats vocab_size as a target for the learned pieces and adds the alphabet (and its
    # `##` forms) on top, so the result can overshoot; aim lower until it fits.
    for _ in range(8):
        vocab = list(learner.learn(items, vocab_size=target, reserved_tokens=list(special_tokens),
                                   lower_thresh=min_frequency, max_unique_chars=max_unique_chars))
        if len(vocab) <= vocab_size or target <= len(special_tokens) + 1:
            break
        target = max(len(special_tokens) + 1, target - (len(vocab) - vocab_size))
    if len(vocab) > vocab_size:
        raise ValueError(f"cannot fit a vocab into vocab_size={vocab_size}: the corpus alphabet "
                         f"alone needs {len(vocab)} tokens (lower max_unique_chars or raise "
                         f"vocab_size)")
    return vocab


def read_lines(patterns: str) -> Iterable[str]:
    """Yields the lines of every file matching the comma-separated globs (UTF-8, bad bytes
    dropped as Google's tokenizer does)."""
    import tensorflow as tf

    files = [f for p in patterns.split(",") if p.strip() for f in sorted(tf.io.gfile.glob(p.strip()))]
    if not files:
        raise FileNotFoundError(f"--input_file matched no files: {patterns}")
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as f:
            for raw in f:
                yield raw.decode("utf-8", "ignore")


def build_vocab_file(input_file: str, output_file: str, vocab_size: int, do_lower_case: bool,
                     min_frequency: int = 2, processes: int | None = None) -> list[str]:
    """Reads the corpus, learns the vocab and writes it one token per line. Returns it."""
    counts = count_words(read_lines(input_file), do_lower_case, processes)
    vocab = learn_vocab(counts, vocab_size, min_frequency=min_frequency)
    with open(output_file, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    return vocab


def main(argv) -> None:
    from absl import flags, logging

    del argv
    f = flags.FLAGS
    vocab = build_vocab_file(f.input_file, f.output_file, f.vocab_size, f.do_lower_case,
                             f.min_frequency)
    logging.info("wrote %d tokens to %s", len(vocab), f.output_file)


if __name__ == "__main__":
    from absl import flags

    from bert_tf.cli import common as cli

    flags.DEFINE_string("input_file", None, "Text files (comma-separated globs), one sentence "
                        "or paragraph per line.")
    flags.DEFINE_string("output_file", None, "Where to write vocab.txt.")
    flags.DEFINE_integer("vocab_size", 30522, "Target size (an upper bound) of the vocab.")
    flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased model).")
    flags.DEFINE_integer("min_frequency", 2, "Lowest word-piece frequency the learner considers.")
    flags.mark_flags_as_required(["input_file", "output_file"])
    cli.run(main)
