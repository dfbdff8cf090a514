"""Training instances of Google's create_pretraining_data on id arrays: the layout of
documents into `[CLS] A [SEP] B [SEP]` pairs, masked-LM masking, and the instance statistics
both implementations report (see `bert_tf.data.pretraining_data` for the algorithm).
"""
from __future__ import annotations

import random
from bisect import bisect_left
from typing import Callable, Iterable, Sequence

import numpy as np

from bert_tf.data.records import TrainingInstance
from bert_tf.text.vocab import MASK_TOKEN


# ---- statistics (the same definitions for both implementations) ---------------------------




def empty_stats() -> dict[str, int]:
    return {"instances": 0, "tokens": 0, "masked": 0, "masked_as_mask": 0, "masked_kept": 0,
            "masked_random": 0, "random_next": 0}


def add_stats(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + int(v)


def summarize(stats: dict[str, int], **extra) -> dict:
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
    stats = empty_stats()
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





def truncation_counts(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """How many tokens Google's truncation loop removes from A and from B: it pops from the
    longer side until both are equally long, then alternately from B and A (ties pop B)."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return 0, 0
    pa = min(excess, len_a - len_b) if len_a > len_b else 0
    pb = min(excess, len_b - len_a) if len_b > len_a else 0
    rest = excess - pa - pb
    return pa + rest // 2, pb + rest - rest // 2


def layout_documents(docs: Iterable[int], doc_lo: list[int], doc_hi: list[int],
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
                    pa, pb = truncation_counts(la, lb, max_num_tokens)
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


def assemble(token_ids: np.ndarray, a_lo, a_hi, b_lo, b_hi, seq_length: int, cls_id: int,
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



def mask_numpy(ids: np.ndarray, lengths: np.ndarray, gen: np.random.Generator, *, cls_id: int,
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


def mask_python(ids: list[int], rng: random.Random, num_to_predict: int, cls_id: int,
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


