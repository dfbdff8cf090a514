"""Learn a WordPiece vocab.txt from raw text, for pretraining BERT from scratch.

    python -m bert_tf.cli.build_vocab --input_file=corpus.txt --vocab_size=8000 \
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

from bert_tf.errors import InputError
from bert_tf.io import atomic_output
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
    """tf-text's WordPiece learner over `word_counts`: the largest vocab it learns within
    `vocab_size` tokens; special tokens first, then the alphabet and its `##` forms, then the
    learned pieces by frequency.

    The learner keeps the pieces seen at least `thresh` times; its own search for `thresh`
    stops at the first vocab within 5% below its target or when the search range is used up
    (going below `min_frequency`), which can leave a vocab above `vocab_size` or far below it.
    So the threshold is searched here instead (doubling from `min_frequency`, then bisection;
    the vocab shrinks as the threshold grows) for the lowest one whose vocab fits, and the rest of
    `vocab_size` is filled with the most frequent pieces the next lower threshold learns.
    A corpus with fewer pieces seen `min_frequency` times gives a smaller vocab.

    Raises:
      InputError: `vocab_size` is not above the special tokens, the input has no words, or the
        alphabet alone (every character as a word start and as a `##` piece) does not fit.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    if vocab_size <= len(special_tokens):
        raise InputError(f"--vocab_size must exceed the {len(special_tokens)} special tokens, "
                         f"got {vocab_size}")
    if not word_counts:
        raise InputError("the input has no words to learn a vocab from")
    params = learner.Params(
        upper_thresh=None, lower_thresh=min_frequency, num_iterations=4,
        max_input_tokens=int(5e6), max_token_length=50, max_unique_chars=max_unique_chars,
        vocab_size=vocab_size, slack_ratio=0.0, include_joiner_token=True, joiner="##",
        reserved_tokens=list(special_tokens))
    words = learner.get_input_words(sorted(word_counts.items()), params.reserved_tokens,
                                    params.max_token_length)
    counts = learner.filter_input_words(
        words, learner.get_allowed_chars(words, max_unique_chars), params.max_input_tokens)
    if not counts:
        raise InputError("the input has no words to learn a vocab from")
    learned: dict[int, list[str]] = {}

    def learn(thresh: int) -> list[str]:
        if thresh not in learned:
            learned[thresh] = learner.learn_with_thresh(counts, thresh, params)
        return learned[thresh]

    lower = max(1, min_frequency)
    if len(learn(lower)) <= vocab_size:
        return learn(lower)  # the corpus gives no more pieces seen min_frequency times
    # Bracket the threshold by doubling (useful targets sit at low thresholds: each learner run
    # costs seconds), up to the count of all characters, above which only the alphabet is left.
    limit = sum(c * len(w) for w, c in counts) + 1
    high = min(2 * lower, limit)
    while len(learn(high)) > vocab_size:
        if high == limit:
            raise InputError(f"--vocab_size={vocab_size} is too small for this corpus: its "
                             f"alphabet alone (each character as a word start and as a ## "
                             f"piece, plus the special tokens) needs {len(learn(high))} tokens")
        lower, high = high, min(2 * high, limit)
    while high - lower > 1:  # invariant: learn(lower) is too big, learn(high) fits
        middle = (lower + high) // 2
        if len(learn(middle)) > vocab_size:
            lower = middle
        else:
            high = middle
    # The vocab moves in steps with the threshold (on the demo corpus 8012 tokens at 1, 5849 at
    # 2): fill the gap up to vocab_size with the most frequent of the pieces the next lower
    # threshold adds.
    return _fill(learn(high), learn(lower), vocab_size)


def _fill(fits: list[str], larger: list[str], vocab_size: int) -> list[str]:
    """`fits` plus the first pieces of `larger` (ordered by count) that it lacks, up to
    `vocab_size` tokens. Both start with the special tokens and the alphabet."""
    have = set(fits)
    extra = [t for t in larger if t not in have][:vocab_size - len(fits)]
    return fits + extra


def read_lines(patterns: str) -> Iterable[str]:
    """Yields the lines of every file matching the comma-separated globs (UTF-8, bad bytes
    dropped as Google's tokenizer does)."""
    import tensorflow as tf

    files = [f for p in patterns.split(",") if p.strip() for f in sorted(tf.io.gfile.glob(p.strip()))]
    if not files:
        raise FileNotFoundError(f"--input_file matched no files: {patterns}")
    for path in files:
        if tf.io.gfile.isdir(path):
            raise InputError(f"--input_file {path} is a directory, expected text files")
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as f:
            for raw in f:
                yield raw.decode("utf-8", "ignore")


def build_vocab_file(input_file: str, output_file: str, vocab_size: int, do_lower_case: bool,
                     min_frequency: int = 2, processes: int | None = None) -> list[str]:
    """Reads the corpus, learns the vocab and writes it one token per line. Returns it."""
    counts = count_words(read_lines(input_file), do_lower_case, processes)
    vocab = learn_vocab(counts, vocab_size, min_frequency=min_frequency)
    with atomic_output(output_file) as f:
        f.write("\n".join(vocab) + "\n")
    return vocab
