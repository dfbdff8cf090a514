"""Pretraining examples from raw text: Google's `create_pretraining_data.py` algorithm.

Input: text files with one sentence per line and a blank line between documents. Output:
TFRecord files of Google's pretraining features (`bert_tf.data.records`), which Google's
`run_pretraining.py` and ours read unchanged.

This module runs the job (tasks, the process pool, `create_pretraining_data`); its parts live
beside it: `pretraining_corpus` (options, input files, the tokenized corpus),
`pretraining_instances` (layout, masking, statistics), `record_encoder` (vectorised
tf.train.Example bytes) and `pretraining_writers` (round-robin files, published when complete).

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

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import random
import time
from typing import Iterator, Sequence

import numpy as np

from bert_tf.data.pretraining_corpus import (REQUIRED_TOKENS, Corpus, PretrainingDataError,
                                             Progress, check_options, corpus_from_token_ids,
                                             expand_input_files, read_corpus)
from bert_tf.data.pretraining_instances import (add_stats, assemble, empty_stats,
                                                instance_statistics, layout_documents,
                                                mask_numpy, mask_python, summarize)
from bert_tf.data.record_encoder import encode_batch
from bert_tf.data.pretraining_writers import open_outputs, write_records, write_round_robin
from bert_tf.text.vocab import Vocab, VocabError, load_vocab

logger = logging.getLogger("bert_tf")

__all__ = [
    "Corpus",
    "PretrainingDataError",
    "REQUIRED_TOKENS",
    "check_options",
    "corpus_from_token_ids",
    "create_pretraining_data",
    "expand_input_files",
    "generate_records",
    "instance_statistics",
    "read_corpus",
    "write_records",
]

# Corpus tokens per task of the fast path (a task is one pass over a range of documents).
_TASK_TOKENS = 1 << 19
# Instances masked and serialised together.
_BATCH_INSTANCES = 4096


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
    layout_documents(range(d0, d1), job.doc_lo, job.doc_hi, job.splits, rng,
                      job.max_seq_length - 3, job.short_seq_prob, out, exact=False,
                      on_document=on_document)
    _bump(done[0])
    return tuple(np.asarray(o, np.int64) for o in out)


def _encode(job: _Job, layout: Sequence[np.ndarray], masks) -> tuple[list[bytes], dict]:
    """Assembles, masks (`masks(ids, lengths)` → rows, cols, new ids) and serialises."""
    ids, lengths, len_a = assemble(job.token_ids, *layout[:4], job.max_seq_length,
                                    job.cls_id, job.sep_id)
    rows, cols, new = masks(ids, lengths)
    return encode_batch(ids, lengths, len_a, layout[4], rows, cols, new, job.mask_id,
                         job.max_predictions_per_seq)


def _encode_task(task: tuple) -> tuple[bytes, np.ndarray, dict]:
    """Phase 2: one slice of the final order → (records back to back, offsets, stats)."""
    job = _JOB
    index, layout = task
    gen = np.random.Generator(np.random.PCG64(_seed_sequence(job, 2, index)))

    def masks(ids, lengths):
        return mask_numpy(ids, lengths, gen, cls_id=job.cls_id, sep_id=job.sep_id,
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


def _exact_batches(job: _Job, rng: random.Random, dupe_factor: int, progress: Progress,
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
        pos, new = mask_python(ids, rng, k, cls_id, sep_id, mask_id, is_subword, random_ids,
                                job.whole_word)
        mask_pos.append(pos)
        mask_new.append(new)

    num_docs = len(job.doc_lo)
    for p in range(dupe_factor):
        layout_documents(range(num_docs), job.doc_lo, job.doc_hi, job.splits, rng,
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
        add_stats(stats, part)
        yield records


def generate_records(corpus: Corpus, vocab: Vocab, *, do_whole_word_mask: bool = False,
                     max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                     random_seed: int = 12345, dupe_factor: int = 10,
                     masked_lm_prob: float = 0.15, short_seq_prob: float = 0.1,
                     num_processes: int | None = None, exact_rng: bool = False,
                     progress: Progress | bool = False, stats: dict | None = None
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
    if not isinstance(progress, Progress):
        progress = Progress(bool(progress))
    stats = {} if stats is None else stats
    stats.update(empty_stats())
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

    yield from _pool_batches(job, corpus, dupe_factor, num_processes, progress, stats, start)


def _layout_tasks(job: _Job, corpus: Corpus, dupe_factor: int) -> list[tuple[int, int, int]]:
    """Phase 1 tasks (pass, first document, end document): each pass over contiguous ranges of
    the shuffled documents of about _TASK_TOKENS tokens. They depend on the corpus only, not on
    the number of processes, and so does the output."""
    splits = corpus.sentence_splits
    num_docs = corpus.num_documents
    doc_tokens = splits[np.asarray(job.doc_hi)] - splits[np.asarray(job.doc_lo)]
    cuts = np.searchsorted(np.cumsum(doc_tokens),
                           np.arange(_TASK_TOKENS, int(doc_tokens.sum()), _TASK_TOKENS)) + 1
    edges = sorted({0, num_docs, *(c for c in cuts.tolist() if c < num_docs)})
    return [(p, a, b) for p in range(dupe_factor) for a, b in zip(edges, edges[1:])]


@contextlib.contextmanager
def _workers(job: _Job, processes: int):
    """(imap, docs_done, pool): a pool of forked workers that inherit `job` (docs_done counts
    their laid-out documents), or this process alone (pool and docs_done None)."""
    if processes == 1:
        _init_worker(job, None)
        try:
            yield map, None, None
        finally:
            _init_worker(None, None)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    docs_done = ctx.Value("q", 0)
    pool = ctx.Pool(processes, initializer=_init_worker, initargs=(job, docs_done))
    try:
        yield pool.imap, docs_done, pool
    finally:
        pool.terminate()
        pool.join()


def _run_layouts(workers, tasks: list, total_docs: int, progress: Progress) -> list[np.ndarray]:
    """Phase 1 on the workers, with progress; returns the five layout columns in task order."""
    imap, docs_done, pool = workers
    layouts: list = []
    it = imap(_layout_task, tasks)
    while len(layouts) < len(tasks):
        try:
            layouts.append(it.next(timeout=1.0) if pool else next(it))
        except multiprocessing.TimeoutError:
            pass
        if docs_done is not None:
            progress(lambda: f"laid out {docs_done.value:,}/{total_docs:,} documents (x passes)")
        else:
            progress(lambda: f"laid out {len(layouts)}/{len(tasks)} tasks")
    return [np.concatenate([part[k] for part in layouts]) for k in range(5)]


def _pool_batches(job: _Job, corpus: Corpus, dupe_factor: int, num_processes: int | None,
                  progress: Progress, stats: dict, start: float) -> Iterator[list[bytes]]:
    """The fast path: phase 1 (layout), the final order, phase 2 (masking + serialisation)."""
    tasks = _layout_tasks(job, corpus, dupe_factor)
    processes = max(1, min(num_processes or _default_processes(), len(tasks)))
    stats["processes"] = processes
    num_docs = corpus.num_documents
    with _workers(job, processes) as workers:
        layout = _run_layouts(workers, tasks, num_docs * dupe_factor, progress)
        n = len(layout[0])
        final = np.random.Generator(np.random.PCG64(_seed_sequence(job, 3))).permutation(n)
        layout = [x[final] for x in layout]
        progress(f"{n:,} instances from {num_docs:,} documents x {dupe_factor} laid out "
                 f"({time.monotonic() - start:.1f} s); masking and writing", force=True)
        tasks2 = [(k, [x[s:s + _BATCH_INSTANCES] for x in layout])
                  for k, s in enumerate(range(0, n, _BATCH_INSTANCES))]
        done = 0
        for buf, offsets, part in workers[0](_encode_task, tasks2):
            add_stats(stats, part)
            offsets = offsets.tolist()
            yield [buf[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
            done += len(offsets) - 1
            progress(lambda: f"{done:,}/{n:,} instances masked and written")
    progress(f"{n:,} instances masked and serialised ({time.monotonic() - start:.1f} s, "
             f"{processes} process{'es' if processes > 1 else ''})", force=True)


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
    vocab.check_unique()
    from bert_tf.text.tokenizer import BertTokenizer

    files = expand_input_files(input_files)
    outputs = open_outputs(output_files)
    report = Progress(progress)
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
        counts = write_round_robin(batches, outputs)
        outputs.publish()
    except BaseException:
        outputs.discard()
        raise
    processes = stats.pop("processes")
    summary = summarize(stats, input_files=len(files), lines=corpus.lines,
                       documents=corpus.num_documents, sentences=corpus.num_sentences,
                       corpus_tokens=corpus.num_tokens, output_files=outputs.paths,
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
