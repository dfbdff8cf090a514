"""Pretraining examples from raw text: Google's `create_pretraining_data.py` algorithm.

Input: text files with one sentence per line and a blank line between documents. Output:
TFRecord files of Google's pretraining features (`bert_tf.data.records`), which Google's
`run_pretraining.py` and ours read unchanged.

Two implementations of the same algorithm exist:

* The **reference** (in `bert_tf.data.pretraining_reference`: `create_instances_reference`,
  `create_pretraining_data_reference`, ...): single-process pure Python on token strings, tokenized
  with the pure-Python `FullTokenizer`, following Google's code draw for draw from one
  `random.Random(random_seed)`. It is the test oracle and the benchmark peer.
* The **fast path** (here: `create_pretraining_data`): lines are tokenized in large batches with the
  in-graph `BertTokenizer` (same ids as `FullTokenizer`); documents are kept as flat int32 id
  arrays; instance layout (chunking, A/B split, random next sentence, truncation) walks sentence
  offsets in Python, while masking and record serialisation are vectorised with NumPy over
  thousands of instances at a time, in worker processes on all cores.

The algorithm (both paths)
--------------------------
Documents are read in file order (a line that is empty after `strip()` ends the document; lines
that tokenize to nothing are skipped; like Google's code, a file not ending in a blank line
continues its last document into the next file; invalid UTF-8 bytes are dropped); empty
documents are dropped; the documents are
shuffled, then `dupe_factor` passes go over all of them. Per document and pass:
`max_num_tokens = max_seq_length - 3`; the target length is `max_num_tokens`, or with
probability `short_seq_prob` a random int in [2, max_num_tokens]; sentences are accumulated into
a chunk until the document ends or the chunk reaches the target; A is the first `a_end` sentences
of the chunk (`a_end` random in [1, len(chunk) - 1]); with probability 0.5, or always for a
one-sentence chunk, B is read from a random other document (up to 10 draws to avoid the current
one) from a random sentence until B reaches the remaining target length, and the chunk's unused
sentences are put back; otherwise B is the rest of the chunk. The pair is truncated to
`max_num_tokens` one token at a time from the longer side, front or back at random, and packed as
`[CLS] A [SEP] B [SEP]`. Masking: every token but [CLS]/[SEP] is a candidate (with whole-word
masking a `##` piece joins the previous candidate's group); groups are shuffled and taken whole
while they fit into `min(max_predictions_per_seq, max(1, round(len(tokens) * masked_lm_prob)))`;
each chosen token becomes [MASK] (80%), stays (10%) or becomes a random vocabulary token (10%);
positions are sorted. All instances are shuffled and written round-robin to the output files.

Randomness and processes of the fast path
-----------------------------------------
The documents are shuffled exactly as Google's code does (`random.Random(random_seed)`). Then two
phases run on a pool of worker processes (forked: they inherit the corpus and use no
TensorFlow), each task with its own random streams seeded from `random_seed` and the task:

1. layout: a task is one pass over a contiguous range of the shuffled documents (about
   `_TASK_TOKENS` corpus tokens); it draws from a `random.Random` and returns the instances'
   token ranges. Every worker holds the whole corpus, so a random next sentence comes from any
   document, as in Google's code. Truncation draws the front/back split of the tokens removed
   from A and from B at once (a popcount of random bits: Binomial(k, 1/2), what k coins give).
2. The parent draws the final order of all instances (Google's final shuffle; NumPy PCG64);
   masking + serialisation tasks are consecutive slices of that order (NumPy PCG64 per slice:
   a random key per candidate group, sorted, replaces the shuffle; two uniforms make the
   80/10/10 choice as in Google's code), so the records come back in their final order and the
   parent writes them round-robin while the workers go on.

The task split depends on the corpus only, not on the number of processes, so a seed gives the
same files on any machine. The instances differ from Google's (other random streams) but follow
the same distribution (`tests/test_pretraining_data.py`, `bench/pretraining_data.py`).

With `exact_rng=True` everything runs in one process from one `random.Random(random_seed)` in
Google's order (document shuffle, layout, per-instance masking in Python, final shuffle): the
records are then identical to the reference's (same features, same order, same files) whenever
the in-graph tokenizer agrees with FullTokenizer (it is built to: see `bert_tf.text`).

Records are serialised by a vectorised encoder that writes the bytes protobuf produces for
`tf.train.Example.SerializeToString(deterministic=True)` of `records.encode_example`'s example
(map keys sorted; protobuf's default map order differs from process to process), so the same
seed gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import random
import sys
import time
from bisect import bisect_left
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from bert_tf.data.records import TrainingInstance, encode_example
from bert_tf.errors import InputError
from bert_tf.text.vocab import (CLS_TOKEN, MASK_TOKEN, SEP_TOKEN, UNK_TOKEN, Vocab, VocabError,
                                load_vocab)

logger = logging.getLogger("bert_tf")

__all__ = [
    "Corpus",
    "PretrainingDataError",
    "check_options",
    "corpus_from_token_ids",
    "create_pretraining_data",
    "expand_input_files",
    "generate_records",
    "instance_statistics",
    "read_corpus",
    "write_records",
]

# Tokens Google's create_pretraining_data needs in the vocab ([PAD] is not: padding is id 0).
REQUIRED_TOKENS = (UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
# Corpus tokens per task of the fast path (a task is one pass over a range of documents).
_TASK_TOKENS = 1 << 19
# Instances masked and serialised together.
_BATCH_INSTANCES = 4096
# Lines per eager call of the in-graph tokenizer (measured ~140k lines/s at 16k lines per call).
_TOKENIZE_BATCH = 16384
_PROGRESS_INTERVAL = 5.0


class PretrainingDataError(InputError):
    """Bad input for creating pretraining data (files, flags); the message names the culprit."""


# ------------------------------------------------------------------------------------------
# Options, input files, progress
# ------------------------------------------------------------------------------------------


def check_options(max_seq_length: int, max_predictions_per_seq: int, masked_lm_prob: float,
                  short_seq_prob: float, dupe_factor: int) -> None:
    """Raises PretrainingDataError for values Google's algorithm cannot run with."""
    if max_seq_length < 5:
        raise PretrainingDataError(
            f"--max_seq_length must be at least 5 ([CLS] A [SEP] B [SEP] with a random target "
            f"length in [2, max_seq_length - 3]), got {max_seq_length}")
    if max_predictions_per_seq < 1:
        raise PretrainingDataError(
            f"--max_predictions_per_seq must be at least 1, got {max_predictions_per_seq}")
    if not 0.0 < masked_lm_prob <= 1.0:
        raise PretrainingDataError(f"--masked_lm_prob must be in (0, 1], got {masked_lm_prob}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise PretrainingDataError(f"--short_seq_prob must be in [0, 1], got {short_seq_prob}")
    if dupe_factor < 1:
        raise PretrainingDataError(f"--dupe_factor must be at least 1, got {dupe_factor}")


def _split_list(value: str | Sequence[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [os.fspath(v).strip() for v in items if os.fspath(v).strip()]


def expand_input_files(patterns: str | Sequence[str]) -> list[str]:
    """Comma-separated globs (or a list) → files, each glob's matches sorted, in glob order.

    Raises FileNotFoundError naming a glob that matches no file, PretrainingDataError for a
    directory."""
    import tensorflow as tf

    globs = _split_list(patterns)
    if not globs:
        raise PretrainingDataError("--input_file is empty")
    files: list[str] = []
    for pattern in globs:
        matches = sorted(tf.io.gfile.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"--input_file pattern {pattern!r} matched no files")
        for path in matches:
            if tf.io.gfile.isdir(path):
                raise PretrainingDataError(f"--input_file {path!r} is a directory, expected "
                                           f"text files")
        files.extend(matches)
    return files


def _read_lines(path: str) -> Iterator[str]:
    """The lines of a file as Google's reader sees them: UTF-8 (bad bytes dropped), split on
    newlines, stripped."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it is not an empty line
    for raw in lines:
        yield raw.decode("utf-8", "ignore").strip()


class _Progress:
    """A progress line on stderr every `interval` seconds (and when a stage ends)."""

    def __init__(self, enabled: bool, interval: float = _PROGRESS_INTERVAL) -> None:
        self.enabled = enabled
        self.interval = interval
        self._last = time.monotonic()

    def __call__(self, message: str | Callable[[], str], force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            text = message() if callable(message) else message
            print(f"create_pretraining_data: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Statistics (the same definitions for both implementations)
# ------------------------------------------------------------------------------------------


def _empty_stats() -> dict[str, int]:
    return {"instances": 0, "tokens": 0, "masked": 0, "masked_as_mask": 0, "masked_kept": 0,
            "masked_random": 0, "random_next": 0}


def _add_stats(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + int(v)


def _summary(stats: dict[str, int], **extra) -> dict:
    n, masked = stats["instances"], stats["masked"]
    out = dict(extra)
    out.update(stats)
    out.update({
        "masked_fraction": masked / stats["tokens"] if stats["tokens"] else 0.0,
        "mask_token_fraction": stats["masked_as_mask"] / masked if masked else 0.0,
        "kept_fraction": stats["masked_kept"] / masked if masked else 0.0,
        "random_token_fraction": stats["masked_random"] / masked if masked else 0.0,
        "random_next_fraction": stats["random_next"] / n if n else 0.0,
        "mean_tokens": stats["tokens"] / n if n else 0.0,
    })
    return out


def instance_statistics(instances: Iterable[TrainingInstance]) -> dict[str, int]:
    """Counts of a list of reference instances: instances, tokens ([CLS]/[SEP] included),
    masked positions and how they were masked ([MASK] / kept / other token), random-next."""
    stats = _empty_stats()
    for inst in instances:
        stats["instances"] += 1
        stats["tokens"] += len(inst.tokens)
        stats["random_next"] += int(inst.is_random_next)
        for pos, label in zip(inst.masked_lm_positions, inst.masked_lm_labels):
            stats["masked"] += 1
            token = inst.tokens[pos]
            if token == MASK_TOKEN:
                stats["masked_as_mask"] += 1
            elif token == label:
                stats["masked_kept"] += 1
            else:
                stats["masked_random"] += 1
    return stats


# ------------------------------------------------------------------------------------------
# The fast path: corpus as id arrays
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    """Tokenized documents as flat arrays.

    token_ids: int32 [tokens], all sentences back to back (in file order).
    sentence_splits: int64 [sentences + 1], sentence s is token_ids[splits[s]:splits[s + 1]].
    document_splits: int64 [documents + 1], document d is sentences
      [document_splits[d], document_splits[d + 1]) (every document has >= 1 sentence, every
      sentence >= 1 token).
    lines: input lines read (including blank ones).
    """

    token_ids: np.ndarray
    sentence_splits: np.ndarray
    document_splits: np.ndarray
    lines: int = 0

    @property
    def num_documents(self) -> int:
        return len(self.document_splits) - 1

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_splits) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.sentence_splits[-1])


def corpus_from_token_ids(documents: Sequence[Sequence[Sequence[int]]]) -> Corpus:
    """A Corpus from nested lists (documents of sentences of ids); empty ones are dropped."""
    ids: list[int] = []
    sentence_splits = [0]
    document_splits = [0]
    for doc in documents:
        count = 0
        for sentence in doc:
            if len(sentence):
                ids.extend(int(t) for t in sentence)
                sentence_splits.append(len(ids))
                count += 1
        if count:
            document_splits.append(document_splits[-1] + count)
    return Corpus(np.asarray(ids, np.int32), np.asarray(sentence_splits, np.int64),
                  np.asarray(document_splits, np.int64))


def read_corpus(input_files: Sequence[str], tokenizer, batch_lines: int = _TOKENIZE_BATCH,
                progress: _Progress | None = None) -> Corpus:
    """Reads and tokenizes the files with the in-graph `BertTokenizer` (Google's reading
    rules, see `read_documents_reference`), `batch_lines` lines per call.

    The tokenizer runs eagerly: with 16k lines per call the per-op overhead is negligible
    (measured ~140k lines/s, as fast as a tf.function, whose tracing would cost ~1.5 s)."""
    import tensorflow as tf

    tokenize = tokenizer.tokenize
    progress = progress or _Progress(False)
    is_break: list[bool] = []  # per non-empty line: a document break came right before it
    flat_parts: list[np.ndarray] = []
    length_parts: list[np.ndarray] = []
    batch: list[str] = []
    lines = 0
    pending_break = False
    start = time.monotonic()

    def flush() -> None:
        ragged = tokenize(tf.constant(batch))
        flat_parts.append(ragged.flat_values.numpy())
        length_parts.append(np.diff(ragged.row_splits.numpy()))
        batch.clear()

    for path in input_files:
        for line in _read_lines(path):
            lines += 1
            if not line:
                pending_break = True
                continue
            is_break.append(pending_break)
            pending_break = False
            batch.append(line)
            if len(batch) == batch_lines:
                flush()
                progress(lambda: f"tokenized {lines:,} lines "
                                 f"({lines / max(time.monotonic() - start, 1e-9):,.0f} lines/s)")
    if batch:
        flush()
    if not length_parts:
        return Corpus(np.zeros([0], np.int32), np.zeros([1], np.int64), np.zeros([1], np.int64),
                      lines)
    lengths = np.concatenate(length_parts)
    token_ids = np.concatenate(flat_parts).astype(np.int32)
    doc_of_line = np.cumsum(np.asarray(is_break, np.int64))
    keep = lengths > 0
    lengths, doc_of_sentence = lengths[keep], doc_of_line[keep]
    sentence_splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if len(lengths):
        starts = np.flatnonzero(np.diff(doc_of_sentence, prepend=-1))
        document_splits = np.concatenate([starts, [len(lengths)]]).astype(np.int64)
    else:
        document_splits = np.zeros([1], np.int64)
    progress(f"tokenized {lines:,} lines into {len(lengths):,} sentences, "
             f"{len(document_splits) - 1:,} documents, {len(token_ids):,} tokens "
             f"({time.monotonic() - start:.1f} s)", force=True)
    return Corpus(token_ids, sentence_splits, document_splits, lines)


# ---- instance layout (shared by the fast and the exact mode) -------------------------------


def _truncation_counts(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """How many tokens Google's truncation loop removes from A and from B: it pops from the
    longer side until both are equally long, then alternately from B and A (ties pop B)."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return 0, 0
    pa = min(excess, len_a - len_b) if len_a > len_b else 0
    pb = min(excess, len_b - len_a) if len_b > len_a else 0
    rest = excess - pa - pb
    return pa + rest // 2, pb + rest - rest // 2


def _layout_documents(docs: Iterable[int], doc_lo: list[int], doc_hi: list[int],
                      splits: list[int], rng: random.Random, max_num_tokens: int,
                      short_seq_prob: float, out: tuple[list, ...], exact: bool,
                      on_instance: Callable[[], None] | None = None,
                      on_document: Callable[[], None] | None = None) -> None:
    """Google's `create_instances_from_document` on sentence offsets, for each of `docs`
    (indexes into the shuffled documents doc_lo/doc_hi, in sentences). Appends a_lo, a_hi,
    b_lo, b_hi (token offsets) and is_random_next to the five lists of `out`.

    exact: draw from `rng` exactly as Google's code does (`randint`, one coin per truncated
    token). Otherwise the same distribution with fewer draws: `a + int(random() * n)` for
    randint, and for truncation the (deterministic) numbers of tokens taken from A and B with
    the front/back split of each drawn at once as a popcount of random bits (a Binomial(k, 1/2),
    which is what k independent coins give)."""
    rand = rng.random
    getrandbits = rng.getrandbits
    if exact:
        randint = rng.randint
    else:
        def randint(a: int, b: int) -> int:
            return a + int(rand() * (b - a + 1))
    out_a_lo, out_a_hi, out_b_lo, out_b_hi, out_rn = (lst.append for lst in out)
    num_docs = len(doc_lo)
    for d in docs:
        lo = doc_lo[d]
        hi = doc_hi[d]
        target = max_num_tokens
        if rand() < short_seq_prob:
            target = randint(2, max_num_tokens)
        first = lo  # first sentence of the current chunk
        while first < hi:
            # Google adds sentences until the chunk reaches `target` tokens or the document
            # ends: the chunk ends at the first sentence s with splits[s + 1] >= start + target.
            s = min(bisect_left(splits, splits[first] + target, first + 1, hi + 1), hi) - 1
            chunk = s - first + 1
            a_end = randint(1, chunk - 1) if chunk >= 2 else 1
            a_lo = splits[first]
            a_hi = splits[first + a_end]
            if chunk == 1 or rand() < 0.5:
                random_next = 1
                target_b = target - (a_hi - a_lo)
                for _ in range(10):
                    rd = randint(0, num_docs - 1)
                    if rd != d:
                        break
                r_lo, r_hi = doc_lo[rd], doc_hi[rd]
                j = r_lo + randint(0, r_hi - r_lo - 1)
                b_lo = splits[j]
                # B takes sentences from j until it reaches target_b tokens or its document ends.
                j = max(min(bisect_left(splits, b_lo + target_b, j + 1, r_hi + 1), r_hi) - 1, j)
                b_hi = splits[j + 1]
                first += a_end  # the chunk's unused sentences are put back
            else:
                random_next = 0
                b_lo = a_hi
                b_hi = splits[s + 1]
                first = s + 1
            la = a_hi - a_lo
            lb = b_hi - b_lo
            if la + lb > max_num_tokens:
                if exact:
                    while la + lb > max_num_tokens:
                        if la > lb:
                            if rand() < 0.5:
                                a_lo += 1
                            else:
                                a_hi -= 1
                            la -= 1
                        else:
                            if rand() < 0.5:
                                b_lo += 1
                            else:
                                b_hi -= 1
                            lb -= 1
                else:
                    pa, pb = _truncation_counts(la, lb, max_num_tokens)
                    front = getrandbits(pa).bit_count() if pa else 0
                    a_lo += front
                    a_hi -= pa - front
                    front = getrandbits(pb).bit_count() if pb else 0
                    b_lo += front
                    b_hi -= pb - front
            out_a_lo(a_lo)
            out_a_hi(a_hi)
            out_b_lo(b_lo)
            out_b_hi(b_hi)
            out_rn(random_next)
            if on_instance is not None:
                on_instance()
        if on_document is not None:
            on_document()


def _assemble(token_ids: np.ndarray, a_lo, a_hi, b_lo, b_hi, seq_length: int, cls_id: int,
              sep_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[CLS] A [SEP] B [SEP] (A, B: token offset ranges), padded with 0 as Google's script
    does, as an int64 [N, S] matrix; returns (ids, lengths, len_a)."""
    a_lo, a_hi, b_lo, b_hi = (np.asarray(x, np.int64) for x in (a_lo, a_hi, b_lo, b_hi))
    la = a_hi - a_lo
    lengths = la + (b_hi - b_lo) + 3
    pos = np.arange(seq_length, dtype=np.int64)[None, :]
    in_a = pos <= la[:, None]
    src = np.where(in_a, a_lo[:, None] - 1, b_lo[:, None] - la[:, None] - 2) + pos
    np.clip(src, 0, max(len(token_ids) - 1, 0), out=src)
    ids = token_ids[src]
    ids[:, 0] = cls_id
    rows = np.arange(len(la))
    ids[rows, la + 1] = sep_id
    ids[rows, lengths - 1] = sep_id
    ids[pos >= lengths[:, None]] = 0
    return ids, lengths, la


def _mask_numpy(ids: np.ndarray, lengths: np.ndarray, gen: np.random.Generator, *, cls_id: int,
                sep_id: int, mask_id: int, is_subword: np.ndarray, random_ids: np.ndarray,
                masked_lm_prob: float, max_predictions_per_seq: int, whole_word: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Google's masking for a batch [N, S] (statistically; own random stream). Returns the
    chosen (rows, positions) in row-major order (positions sorted within a row) and the new
    token ids for them."""
    n_rows, seq = ids.shape
    pos = np.arange(seq)[None, :]
    cand = (pos < lengths[:, None]) & (ids != cls_id) & (ids != sep_id)
    num_to_predict = np.minimum(max_predictions_per_seq,
                                np.maximum(1, np.rint(lengths * masked_lm_prob).astype(np.int64)))
    keys = gen.random((n_rows, seq))
    if not whole_word:
        # A uniformly random order of the candidates (= a shuffle); take the first K: the
        # candidates whose key is at most the K-th smallest (float64 keys practically never
        # tie; the cumulative count keeps K even then).
        keys = np.where(cand, keys, 2.0)
        k = np.minimum(num_to_predict, cand.sum(axis=1))
        kth = np.take_along_axis(np.sort(keys, axis=1), np.maximum(k - 1, 0)[:, None], axis=1)
        selected = cand & (keys <= kth)
        selected &= np.cumsum(selected, axis=1) <= k[:, None]
    else:
        # Groups: a "##" piece joins the previous candidate's group (even across [SEP], as in
        # Google's loop). Groups are visited in random order and taken whole while they fit.
        subword = is_subword[np.clip(ids, 0, len(is_subword) - 1)]
        before = np.cumsum(cand, axis=1) - cand
        start = cand & ~(subword & (before > 0))
        gid = np.cumsum(start, axis=1) - 1
        num_groups = start.sum(axis=1)
        flat_gid = (np.arange(n_rows)[:, None] * seq + np.clip(gid, 0, seq - 1))
        sizes = np.bincount(flat_gid[cand], minlength=n_rows * seq).reshape(n_rows, seq)
        gkeys = np.where(pos < num_groups[:, None], keys, 2.0)
        order = np.argsort(gkeys, axis=1, kind="stable")
        osizes = np.take_along_axis(sizes, order, axis=1)
        count = np.zeros(n_rows, np.int64)
        take = np.zeros((n_rows, seq), bool)
        for r in range(int(num_groups.max(initial=0))):
            size = osizes[:, r]
            ok = (size > 0) & (count < num_to_predict) & (count + size <= num_to_predict)
            take[:, r] = ok
            count += np.where(ok, size, 0)
            if r % 8 == 7 and not ((count < num_to_predict) & (num_groups > r + 1)).any():
                break
        chosen = np.zeros((n_rows, seq), bool)
        np.put_along_axis(chosen, order, take, axis=1)
        selected = cand & np.take_along_axis(chosen, np.clip(gid, 0, seq - 1), axis=1)
    rows, cols = np.nonzero(selected)
    u, v = gen.random(len(rows)), gen.random(len(rows))
    random_tokens = random_ids[gen.integers(0, len(random_ids), len(rows))]
    original = ids[rows, cols]
    new = np.where(u < 0.8, mask_id, np.where(v < 0.5, original, random_tokens))
    return rows, cols, new


def _mask_python(ids: list[int], rng: random.Random, num_to_predict: int, cls_id: int,
                 sep_id: int, mask_id: int, is_subword: Sequence[bool],
                 random_ids: Sequence[int], whole_word: bool
                 ) -> tuple[list[int], list[int]]:
    """`create_masked_lm_predictions_reference` on ids, with the same draws from `rng`.
    Returns (sorted positions, new ids)."""
    cand: list[list[int]] = []
    for i, t in enumerate(ids):
        if t == cls_id or t == sep_id:
            continue
        if whole_word and cand and is_subword[t]:
            cand[-1].append(i)
        else:
            cand.append([i])
    rng.shuffle(cand)
    chosen: list[tuple[int, int]] = []
    n_random = len(random_ids)
    for group in cand:  # groups are disjoint, so Google's "covered" check never fires
        if len(chosen) >= num_to_predict:
            break
        if len(chosen) + len(group) > num_to_predict:
            continue
        for index in group:
            if rng.random() < 0.8:
                new = mask_id
            elif rng.random() < 0.5:
                new = ids[index]
            else:
                new = random_ids[rng.randint(0, n_random - 1)]
            chosen.append((index, new))
    chosen.sort()
    return [c[0] for c in chosen], [c[1] for c in chosen]


# ---- serialisation -------------------------------------------------------------------------


def _varint_len(values: np.ndarray) -> np.ndarray:
    """Bytes of the protobuf varint of each non-negative value."""
    v = np.asarray(values, np.uint64)
    n = np.ones(v.shape, np.int64)
    for k in range(1, 10):
        n += v >= np.uint64(1 << (7 * k))
    return n


def _varint_block(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Protobuf varints of non-negative [N, W] ints as a padded byte block [N, W * width] and
    its validity mask (None when every varint has one byte)."""
    v = np.asarray(values)
    top = int(v.max(initial=0))
    if int(v.min(initial=0)) < 0:
        raise ValueError("negative values cannot be written as int64 varints here")
    v = v.astype(np.uint32 if top < (1 << 28) else np.uint64)  # thresholds fit the dtype
    width = 1
    while top >= 1 << (7 * width):
        width += 1
    if width == 1:
        return v.astype(np.uint8), None
    parts = np.empty(v.shape + (width,), np.uint8)
    valid = np.empty(v.shape + (width,), bool)
    for j in range(width):
        more = v >= v.dtype.type(1 << (7 * (j + 1)))
        parts[..., j] = ((v >> v.dtype.type(7 * j)) & v.dtype.type(0x7F)).astype(np.uint8)
        parts[..., j] |= more.astype(np.uint8) << np.uint8(7)
        valid[..., j] = True if j == 0 else v >= v.dtype.type(1 << (7 * j))
    n = v.shape[0]
    return parts.reshape(n, -1), valid.reshape(n, -1)


class _RowWriter:
    """Builds N byte strings at once from blocks: constants, [N, w] byte matrices, and padded
    byte matrices with a validity mask (ragged rows). Runs of fixed-width blocks are merged
    into one matrix; each row is then joined from a few slices."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.blocks: list[tuple[np.ndarray, np.ndarray | None]] = []

    def const(self, data: bytes) -> None:
        self.block(np.broadcast_to(np.frombuffer(data, np.uint8), (self.n, len(data))), None)

    def block(self, data: np.ndarray, mask: np.ndarray | None) -> None:
        if mask is not None and mask.all():
            mask = None
        self.blocks.append((data, mask))

    def varint(self, values: np.ndarray) -> None:
        self.block(*_varint_block(np.asarray(values)[:, None]))

    def build(self) -> list[bytes]:
        n = self.n
        columns: list[list[bytes]] = []
        dense: list[np.ndarray] = []

        def flush_dense() -> None:
            if dense:
                matrix = np.concatenate(dense, axis=1) if len(dense) > 1 else dense[0]
                width = matrix.shape[1]
                buf = np.ascontiguousarray(matrix, np.uint8).tobytes()
                columns.append([buf[k:k + width] for k in range(0, n * width, width)])
                dense.clear()

        for data, mask in self.blocks:
            if mask is None:
                dense.append(data)
                continue
            flush_dense()
            buf = data[mask].tobytes()
            offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).tolist()
            columns.append([buf[a:b] for a, b in zip(offsets[:-1], offsets[1:])])
        flush_dense()
        if len(columns) == 1:
            return columns[0]
        return list(map(b"".join, zip(*columns)))


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _serialize_examples(int_features: dict[str, np.ndarray],
                        float_features: dict[str, np.ndarray]) -> list[bytes]:
    """tf.train.Example bytes for N rows, as `SerializeToString(deterministic=True)` writes
    them (map keys sorted). int features: non-negative [N, W]; float: [N, W] float32."""
    n = len(next(iter(int_features.values())))
    parts = {}
    for name, values in int_features.items():
        data, mask = _varint_block(values)
        payload = (np.full(n, data.shape[1], np.int64) if mask is None
                   else mask.sum(axis=1).astype(np.int64))
        parts[name] = (b"\x1a", data, mask, payload)  # Feature.int64_list = 3
    for name, values in float_features.items():
        data = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(n, -1)
        parts[name] = (b"\x12", data, None, np.full(n, data.shape[1], np.int64))  # float_list
    lens = {}
    total = np.zeros(n, np.int64)
    for name in sorted(parts):
        payload = parts[name][3]
        list_len = 1 + _varint_len(payload) + payload
        feature_len = 1 + _varint_len(list_len) + list_len
        entry_len = 3 + len(name) + _varint_len(feature_len) + feature_len
        lens[name] = (list_len, feature_len, entry_len)
        total += 1 + _varint_len(entry_len) + entry_len
    w = _RowWriter(n)
    w.const(b"\x0a")  # Example.features
    w.varint(total)
    for name in sorted(parts):
        tag, data, mask, payload = parts[name]
        list_len, feature_len, entry_len = lens[name]
        key = b"\x0a" + bytes([len(name)]) + name.encode() + b"\x12"  # entry key, value tag
        if payload.min() == payload.max():  # the same header on every row: one constant
            v = _varint_bytes
            w.const(b"\x0a" + v(int(entry_len[0])) + key + v(int(feature_len[0])) + tag
                    + v(int(list_len[0])) + b"\x0a" + v(int(payload[0])))
        else:
            w.const(b"\x0a")  # Features.feature: one map entry
            w.varint(entry_len)
            w.const(key)
            w.varint(feature_len)
            w.const(tag)
            w.varint(list_len)
            w.const(b"\x0a")  # Int64List.value / FloatList.value, packed
            w.varint(payload)
        w.block(data, mask)
    return w.build()


def _encode_batch(ids: np.ndarray, lengths: np.ndarray, len_a: np.ndarray,
                  random_next: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  new_ids: np.ndarray, mask_id: int, max_predictions_per_seq: int
                  ) -> tuple[list[bytes], dict[str, int]]:
    """Masks and serialises a batch assembled by `_assemble`; returns (records, stats)."""
    n, seq = ids.shape
    labels = ids[rows, cols]
    ids[rows, cols] = new_ids
    pos = np.arange(seq)[None, :]
    input_mask = (pos < lengths[:, None]).astype(np.uint8)
    segment_ids = ((pos > len_a[:, None] + 1) & input_mask).astype(np.uint8)
    counts = np.bincount(rows, minlength=n)
    col = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
    m = max_predictions_per_seq
    positions = np.zeros((n, m), np.int64)
    masked_ids = np.zeros((n, m), np.int64)
    positions[rows, col] = cols
    masked_ids[rows, col] = labels
    weights = (np.arange(m)[None, :] < counts[:, None]).astype(np.float32)
    records = _serialize_examples(
        {"input_ids": ids, "input_mask": input_mask, "segment_ids": segment_ids,
         "masked_lm_positions": positions, "masked_lm_ids": masked_ids,
         "next_sentence_labels": np.asarray(random_next, np.int64)[:, None]},
        {"masked_lm_weights": weights})
    as_mask = new_ids == mask_id
    kept = ~as_mask & (new_ids == labels)
    stats = {"instances": n, "tokens": int(lengths.sum()), "masked": len(rows),
             "masked_as_mask": int(as_mask.sum()), "masked_kept": int(kept.sum()),
             "masked_random": int(len(rows) - as_mask.sum() - kept.sum()),
             "random_next": int(np.sum(random_next))}
    return records, stats


# ---- tasks and processes -------------------------------------------------------------------
#
# Phase 1 (layout): tasks = one pass over a contiguous range of the shuffled documents; each
# returns the instances' token ranges. The parent draws the final (shuffled) order of all
# instances. Phase 2 (masking + serialisation): tasks = consecutive slices of that order, so
# records come back in final order and the parent writes them while the workers go on.


@dataclasses.dataclass
class _Job:
    """What every task needs (read-only; inherited by forked workers)."""

    token_ids: np.ndarray
    splits: list[int]
    doc_lo: list[int]
    doc_hi: list[int]
    entropy: int
    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    whole_word: bool
    cls_id: int
    sep_id: int
    mask_id: int
    is_subword: np.ndarray
    random_ids: np.ndarray


_JOB: _Job | None = None
_DOCS_DONE = None  # a shared multiprocessing.Value counting laid-out documents, or None
_COUNT_EVERY = 256


def _init_worker(job: _Job | None, docs_done) -> None:
    global _JOB, _DOCS_DONE
    _JOB, _DOCS_DONE = job, docs_done


def _bump(n: int) -> None:
    counter = _DOCS_DONE
    if counter is not None and n:
        with counter.get_lock():
            counter.value += n


def _seed_sequence(job: _Job, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(job.entropy, spawn_key=key)


def _layout_task(task: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Phase 1: instance layouts of one pass over the shuffled documents [d0, d1)."""
    job = _JOB
    pass_index, d0, d1 = task
    seed = _seed_sequence(job, 1, pass_index, d0).generate_state(4)
    rng = random.Random(int.from_bytes(seed.tobytes(), "little"))
    done = [0]

    def on_document() -> None:
        done[0] += 1
        if done[0] == _COUNT_EVERY:
            _bump(done[0])
            done[0] = 0

    out: tuple[list, ...] = ([], [], [], [], [])
    _layout_documents(range(d0, d1), job.doc_lo, job.doc_hi, job.splits, rng,
                      job.max_seq_length - 3, job.short_seq_prob, out, exact=False,
                      on_document=on_document)
    _bump(done[0])
    return tuple(np.asarray(o, np.int64) for o in out)


def _encode(job: _Job, layout: Sequence[np.ndarray], masks) -> tuple[list[bytes], dict]:
    """Assembles, masks (`masks(ids, lengths)` → rows, cols, new ids) and serialises."""
    ids, lengths, len_a = _assemble(job.token_ids, *layout[:4], job.max_seq_length,
                                    job.cls_id, job.sep_id)
    rows, cols, new = masks(ids, lengths)
    return _encode_batch(ids, lengths, len_a, layout[4], rows, cols, new, job.mask_id,
                         job.max_predictions_per_seq)


def _encode_task(task: tuple) -> tuple[bytes, np.ndarray, dict]:
    """Phase 2: one slice of the final order → (records back to back, offsets, stats)."""
    job = _JOB
    index, layout = task
    gen = np.random.Generator(np.random.PCG64(_seed_sequence(job, 2, index)))

    def masks(ids, lengths):
        return _mask_numpy(ids, lengths, gen, cls_id=job.cls_id, sep_id=job.sep_id,
                           mask_id=job.mask_id, is_subword=job.is_subword,
                           random_ids=job.random_ids, masked_lm_prob=job.masked_lm_prob,
                           max_predictions_per_seq=job.max_predictions_per_seq,
                           whole_word=job.whole_word)

    records, stats = _encode(job, layout, masks)
    offsets = np.cumsum([0] + [len(r) for r in records])
    return b"".join(records), offsets, stats


def _default_processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _make_job(corpus: Corpus, vocab: Vocab, order: list[int], random_seed: int,
              max_seq_length: int, max_predictions_per_seq: int, masked_lm_prob: float,
              short_seq_prob: float, do_whole_word_mask: bool) -> _Job:
    doc_splits = corpus.document_splits.tolist()
    words = list(vocab.token_to_id)  # Google's vocab_words: the vocab's keys in order
    return _Job(
        token_ids=np.asarray(corpus.token_ids, np.int32),
        splits=corpus.sentence_splits.tolist(),
        doc_lo=[doc_splits[o] for o in order], doc_hi=[doc_splits[o + 1] for o in order],
        entropy=random_seed % (1 << 64), max_seq_length=max_seq_length,
        max_predictions_per_seq=max_predictions_per_seq, masked_lm_prob=masked_lm_prob,
        short_seq_prob=short_seq_prob, whole_word=do_whole_word_mask,
        cls_id=vocab.cls_id, sep_id=vocab.sep_id, mask_id=vocab.mask_id,
        is_subword=np.array([t.startswith("##") for t in vocab.tokens] + [False]),
        random_ids=np.array([vocab.token_to_id[w] for w in words], np.int64))


def _exact_batches(job: _Job, rng: random.Random, dupe_factor: int, progress: _Progress,
                   stats: dict) -> Iterator[list[bytes]]:
    """All passes in this process from `rng`, masking each instance right after its layout in
    Python, in Google's order of draws; then Google's final shuffle."""
    tokens = job.token_ids.tolist()
    is_subword = job.is_subword.tolist()
    random_ids = job.random_ids.tolist()
    cls_id, sep_id, mask_id = job.cls_id, job.sep_id, job.mask_id
    prob, max_pred = job.masked_lm_prob, job.max_predictions_per_seq
    out: tuple[list, ...] = ([], [], [], [], [])
    mask_pos: list[list[int]] = []
    mask_new: list[list[int]] = []

    def on_instance() -> None:
        a_lo, a_hi, b_lo, b_hi = out[0][-1], out[1][-1], out[2][-1], out[3][-1]
        ids = [cls_id, *tokens[a_lo:a_hi], sep_id, *tokens[b_lo:b_hi], sep_id]
        k = min(max_pred, max(1, int(round(len(ids) * prob))))
        pos, new = _mask_python(ids, rng, k, cls_id, sep_id, mask_id, is_subword, random_ids,
                                job.whole_word)
        mask_pos.append(pos)
        mask_new.append(new)

    num_docs = len(job.doc_lo)
    for p in range(dupe_factor):
        _layout_documents(range(num_docs), job.doc_lo, job.doc_hi, job.splits, rng,
                          job.max_seq_length - 3, job.short_seq_prob, out, exact=True,
                          on_instance=on_instance)
        progress(lambda: f"pass {p + 1}/{dupe_factor}: {len(out[0]):,} instances")
    order = list(range(len(out[0])))
    rng.shuffle(order)  # Google's rng.shuffle(instances): same length, same permutation
    layout = [np.asarray(o, np.int64) for o in out]
    for start in range(0, len(order), _BATCH_INSTANCES):
        idx = order[start:start + _BATCH_INSTANCES]

        def masks(ids, lengths, idx=idx):
            counts = [len(mask_pos[i]) for i in idx]
            rows = np.repeat(np.arange(len(idx)), counts)
            cols = np.fromiter((c for i in idx for c in mask_pos[i]), np.int64, sum(counts))
            new = np.fromiter((c for i in idx for c in mask_new[i]), np.int64, sum(counts))
            return rows, cols, new

        records, part = _encode(job, [x[idx] for x in layout], masks)
        _add_stats(stats, part)
        yield records


def generate_records(corpus: Corpus, vocab: Vocab, *, do_whole_word_mask: bool = False,
                     max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                     random_seed: int = 12345, dupe_factor: int = 10,
                     masked_lm_prob: float = 0.15, short_seq_prob: float = 0.1,
                     num_processes: int | None = None, exact_rng: bool = False,
                     progress: _Progress | bool = False, stats: dict | None = None
                     ) -> Iterator[list[bytes]]:
    """Yields the serialised tf.train.Examples of a tokenized corpus in batches, in their
    final (shuffled) order. `stats`, if given, receives the counts of `instance_statistics`
    (complete once the generator is exhausted) and "processes".

    num_processes: worker processes (default: all cores available to this process); the
      output does not depend on it. exact_rng: Google's single random stream in this process
      (the records equal `create_instances_reference`'s on the same tokens).
    """
    check_options(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    if not isinstance(progress, _Progress):
        progress = _Progress(bool(progress))
    stats = {} if stats is None else stats
    stats.update(_empty_stats())
    num_docs = corpus.num_documents
    if num_docs == 0:
        raise PretrainingDataError("the input has no documents (every line is empty or "
                                   "tokenizes to nothing)")
    rng = random.Random(random_seed)
    order = list(range(num_docs))
    rng.shuffle(order)  # the same permutation as Google's rng.shuffle(all_documents)
    job = _make_job(corpus, vocab, order, random_seed, max_seq_length, max_predictions_per_seq,
                    masked_lm_prob, short_seq_prob, do_whole_word_mask)
    start = time.monotonic()
    if exact_rng:
        stats["processes"] = 1
        yield from _exact_batches(job, rng, dupe_factor, progress, stats)
        progress(f"{stats['instances']:,} instances from {num_docs:,} documents x "
                 f"{dupe_factor} ({time.monotonic() - start:.1f} s, 1 process, exact)",
                 force=True)
        return

    # Phase 1 tasks: each pass over contiguous document ranges of about _TASK_TOKENS tokens
    # (independent of the number of processes, so is the output).
    splits = corpus.sentence_splits
    doc_tokens = splits[np.asarray(job.doc_hi)] - splits[np.asarray(job.doc_lo)]
    cuts = np.searchsorted(np.cumsum(doc_tokens),
                           np.arange(_TASK_TOKENS, int(doc_tokens.sum()), _TASK_TOKENS)) + 1
    edges = sorted({0, num_docs, *(c for c in cuts.tolist() if c < num_docs)})
    tasks = [(p, a, b) for p in range(dupe_factor) for a, b in zip(edges, edges[1:])]
    processes = max(1, min(num_processes or _default_processes(), len(tasks)))
    stats["processes"] = processes
    total_docs = num_docs * dupe_factor
    pool = None
    if processes > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        docs_done = ctx.Value("q", 0)
        pool = ctx.Pool(processes, initializer=_init_worker, initargs=(job, docs_done))
        imap = pool.imap
    else:
        docs_done = None
        _init_worker(job, None)
        imap = map
    try:
        layouts = []
        it = imap(_layout_task, tasks)
        while len(layouts) < len(tasks):
            try:
                layouts.append(it.next(timeout=1.0) if pool else next(it))
            except multiprocessing.TimeoutError:
                pass
            if docs_done is not None:
                progress(lambda: f"laid out {docs_done.value:,}/{total_docs:,} documents "
                                 f"(x passes)")
            else:
                progress(lambda: f"laid out {len(layouts)}/{len(tasks)} tasks")
        layout = [np.concatenate([part[k] for part in layouts]) for k in range(5)]
        n = len(layout[0])
        final = np.random.Generator(np.random.PCG64(_seed_sequence(job, 3))).permutation(n)
        layout = [x[final] for x in layout]
        progress(f"{n:,} instances from {num_docs:,} documents x {dupe_factor} laid out "
                 f"({time.monotonic() - start:.1f} s); masking and writing", force=True)
        tasks2 = [(k, [x[s:s + _BATCH_INSTANCES] for x in layout])
                  for k, s in enumerate(range(0, n, _BATCH_INSTANCES))]
        done = 0
        for buf, offsets, part in imap(_encode_task, tasks2):
            _add_stats(stats, part)
            offsets = offsets.tolist()
            yield [buf[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
            done += len(offsets) - 1
            progress(lambda: f"{done:,}/{n:,} instances masked and written")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        else:
            _init_worker(None, None)
    progress(f"{n:,} instances masked and serialised ({time.monotonic() - start:.1f} s, "
             f"{processes} process{'es' if processes > 1 else ''})", force=True)


# ---- writing ---------------------------------------------------------------------------------


def _open_writers(output_files: str | Sequence[str]) -> tuple[list[str], list]:
    """Opens a TFRecordWriter per path (creating missing directories); a path that cannot be
    written raises PretrainingDataError naming it."""
    import tensorflow as tf

    paths = _split_list(output_files)
    if not paths:
        raise PretrainingDataError("--output_file is empty")
    writers = []
    for path in paths:
        try:
            if tf.io.gfile.isdir(path):
                raise PretrainingDataError(f"cannot write --output_file {path!r}: it is a "
                                           f"directory")
            parent = os.path.dirname(path)
            if parent and not tf.io.gfile.exists(parent):
                tf.io.gfile.makedirs(parent)
            writers.append(tf.io.TFRecordWriter(path))
        except (tf.errors.OpError, OSError, PretrainingDataError) as e:
            for w in writers:
                w.close()
            if isinstance(e, PretrainingDataError):
                raise
            reason = (getattr(e, "message", None) or str(e)).splitlines()[0]
            raise PretrainingDataError(f"cannot write --output_file {path!r}: {reason}") from None
    return paths, writers


def write_records(batches: Iterable[Sequence[bytes]], output_files: str | Sequence[str] | tuple
                  ) -> list[int]:
    """Writes batches of records round-robin (the i-th record overall to file
    i % len(files)), as Google's script does. `output_files`: paths, or `(paths, writers)` from
    `_open_writers` (closed here). Returns the number of records per file."""
    paths, writers = (output_files if isinstance(output_files, tuple)
                      else _open_writers(output_files))
    k = len(writers)
    counts = [0] * k
    total = 0
    try:
        for batch in batches:
            for j in range(k):  # record i of the batch goes to file (total + i) % k
                first = (j - total) % k
                write = writers[j].write
                for rec in batch[first::k]:
                    write(rec)
                counts[j] += len(batch[first::k])
            total += len(batch)
    finally:
        for w in writers:
            w.close()
    return counts


def _discard(writers: tuple[list[str], list]) -> None:
    """Closes and removes the output files of a failed run (best effort)."""
    import tensorflow as tf

    for path, writer in zip(*writers):
        try:
            writer.close()
            tf.io.gfile.remove(path)
        except Exception:  # noqa: BLE001 - cleanup must not hide the original error
            pass


# ---- the whole job -------------------------------------------------------------------------


def create_pretraining_data(input_files: str | Sequence[str], output_files: str | Sequence[str],
                            vocab: Vocab | str | os.PathLike, do_lower_case: bool = True,
                            do_whole_word_mask: bool = False, max_seq_length: int = 128,
                            max_predictions_per_seq: int = 20, random_seed: int = 12345,
                            dupe_factor: int = 10, masked_lm_prob: float = 0.15,
                            short_seq_prob: float = 0.1, num_processes: int | None = None,
                            exact_rng: bool = False, progress: bool = True) -> dict:
    """Google's create_pretraining_data: text files → pretraining TFRecord files (fast path).

    Args:
      input_files: comma-separated globs (or a list); every glob must match a file.
      output_files: comma-separated paths (or a list); instances go round-robin.
      vocab: vocab.txt path or Vocab (needs [UNK], [CLS], [SEP], [MASK]).
      num_processes: worker processes (default: all available cores); the output does not
        depend on it.
      exact_rng: one process, Google's random stream: the records equal the reference's.
      progress: a progress line on stderr every few seconds.
    Returns:
      A summary dict (also logged): input_files, lines, documents, sentences, corpus_tokens,
      instances, tokens ([CLS]/[SEP] included), masked, masked_fraction, masked_as_mask /
      masked_kept / masked_random and their fractions of the masked positions
      (mask_token_fraction, kept_fraction, random_token_fraction), random_next,
      random_next_fraction, mean_tokens, output_files, records_per_file, processes, seconds.
    """
    start = time.monotonic()
    check_options(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    if not isinstance(vocab, Vocab):
        vocab = load_vocab(vocab, required_special_tokens=REQUIRED_TOKENS)
    else:
        missing = [t for t in REQUIRED_TOKENS if t not in vocab]
        if missing:
            raise VocabError(f"the vocab lacks the special token(s) {', '.join(missing)}")
    from bert_tf.text.tokenizer import BertTokenizer

    files = expand_input_files(input_files)
    writers = _open_writers(output_files)
    report = _Progress(progress)
    stats: dict = {}
    try:
        tokenizer = BertTokenizer(vocab, do_lower_case=do_lower_case)
        corpus = read_corpus(files, tokenizer, progress=report)
        batches = generate_records(
            corpus, vocab, do_whole_word_mask=do_whole_word_mask, max_seq_length=max_seq_length,
            max_predictions_per_seq=max_predictions_per_seq, random_seed=random_seed,
            dupe_factor=dupe_factor, masked_lm_prob=masked_lm_prob,
            short_seq_prob=short_seq_prob, num_processes=num_processes, exact_rng=exact_rng,
            progress=report, stats=stats)
        counts = write_records(batches, writers)
    except BaseException:
        _discard(writers)
        raise
    processes = stats.pop("processes")
    summary = _summary(stats, input_files=len(files), lines=corpus.lines,
                       documents=corpus.num_documents, sentences=corpus.num_sentences,
                       corpus_tokens=corpus.num_tokens, output_files=writers[0],
                       records_per_file=counts, processes=processes, exact_rng=exact_rng,
                       seconds=time.monotonic() - start)
    logger.info(
        "create_pretraining_data: %d documents (%d sentences, %d tokens) x %d -> %d instances "
        "in %d file(s); %d tokens, %.2f%% masked (%.1f%% [MASK] / %.1f%% kept / %.1f%% random), "
        "%.1f%% random next; %.1f s, %d process(es)",
        summary["documents"], summary["sentences"], summary["corpus_tokens"], dupe_factor,
        summary["instances"], len(counts), summary["tokens"], 100 * summary["masked_fraction"],
        100 * summary["mask_token_fraction"], 100 * summary["kept_fraction"],
        100 * summary["random_token_fraction"], 100 * summary["random_next_fraction"],
        summary["seconds"], processes)
    return summary
