"""A vectorised tf.train.Example encoder for pretraining records.

It writes, for N rows at once, the bytes protobuf produces for
`tf.train.Example.SerializeToString(deterministic=True)` of `records.encode_example`'s example
(map keys sorted), so the same seed gives byte-identical files; building the protos one by one
in Python was the bottleneck of record writing.
"""
from __future__ import annotations

import numpy as np


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


def serialize_examples(int_features: dict[str, np.ndarray],
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


def encode_batch(ids: np.ndarray, lengths: np.ndarray, len_a: np.ndarray,
                  random_next: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  new_ids: np.ndarray, mask_id: int, max_predictions_per_seq: int
                  ) -> tuple[list[bytes], dict[str, int]]:
    """Masks and serialises a batch assembled by `assemble`; returns (records, stats)."""
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
    records = serialize_examples(
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


