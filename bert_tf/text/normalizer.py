"""Google's per-character normalization as a tf-text `FastBertNormalizer` model.

`build_normalizer_model(do_lower_case)` returns the flatbuffer that `BertTokenizer` hands to
tf-text's `FastBertNormalizer`: a per-code-point string map (Google's cleaning, whitespace,
CJK and punctuation spacing, and for uncased vocabularies lower-casing + NFD without Mn marks)
stored in a double-array trie over UTF-8 bytes. The rules and their limits are described in
`bert_tf.text.tokenizer`. The model is cached on disk (verified before use, see `_read_cached`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import unicodedata

import numpy as np

from bert_tf.text import python_tokenizer as _ref

__all__ = ["build_normalizer_model"]


# --------------------------------------------------------------------------------------------
# Google's per-character normalization map
# --------------------------------------------------------------------------------------------


def _map_char(ch: str, do_lower_case: bool) -> str:
    """What Google's basic tokenization does to one character (spaces mark word boundaries).

    Google's steps (clean, space CJK, split on whitespace, lower + NFD + drop Mn, split
    punctuation) act character by character, except for the final-sigma rule of
    ``str.lower()`` and NFD's canonical reordering (see the module docstring).
    """
    cp = ord(ch)
    if cp == 0 or cp == 0xFFFD or _ref._is_control(ch):
        return ""
    if _ref._is_whitespace(ch) or ch.isspace():
        return " "  # isspace: U+2028/U+2029 are not Zs but Python's str.split splits on them
    s = _ref._strip_accents(ch.lower()) if do_lower_case else ch
    out = []
    for c in s:
        if c.isspace():
            out.append(" ")
        elif _ref._is_punctuation(c):
            out.append(f" {c} ")
        else:
            out.append(c)
    mapped = "".join(out)
    if _ref._is_cjk(cp):
        mapped = f" {mapped} "
    return mapped


@functools.lru_cache(maxsize=2)
def _char_map(do_lower_case: bool) -> dict[int, str]:
    """{code point: mapped string} for every valid code point whose mapping is not itself."""
    changed: dict[int, str] = {}
    category = unicodedata.category
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates cannot occur in UTF-8
        ch = chr(cp)
        cat = category(ch)
        if cat[0] == "C" and cp not in (9, 10, 13):
            changed[cp] = ""  # controls, format, unassigned, private use: deleted
            continue
        mapped = _map_char(ch, do_lower_case)
        if mapped != ch:
            changed[cp] = mapped
    return changed


# --------------------------------------------------------------------------------------------
# A double-array trie in the layout FastBertNormalizer reads
# --------------------------------------------------------------------------------------------
#
# Unit layout (uint32), as read by tf-text's trie accessor:
#   bits 0-7   label of the edge into this unit's node (a leaf unit has bit 31 set instead);
#   bit 8      the node has a value, stored in the unit at (id ^ offset);
#   bit 9      offset is stored shifted right by 8 (not needed here: arrays are < 2**21 units);
#   bits 10-30 offset; the child on byte c of the node at `id` is unit (id ^ offset ^ c).
# A value unit holds 0x80000000 | value. The root is unit 0.
#
# The trie is built as a DAG: nodes with identical subtrees (for example the thousands of
# "delete this code point" blocks) share one child block, which is valid because a block is only
# ever entered through a node whose whole subtree it represents.

# FastBertNormalizer's value encoding: bit 30 = "mapped string differs", bits 6-29 = offset in
# the string pool, bits 0-5 = UTF-8 length of the mapped string (<= 63).
_NORM_DIFFERENT = 0x40000000
_NORM_LEN_BITS = 6
_NORM_MAX_LEN = (1 << _NORM_LEN_BITS) - 1
_NORM_MAX_OFFSET = (1 << (32 - 2 - _NORM_LEN_BITS)) - 1


class _DagBuilder:
    """Interns trie nodes by content: a node is (value or 0, ((label, child_node), ...))."""

    def __init__(self) -> None:
        self.nodes: list[tuple[int, tuple[tuple[int, int], ...]]] = []
        self._ids: dict[tuple[int, tuple[tuple[int, int], ...]], int] = {}

    def node(self, value: int, children: tuple[tuple[int, int], ...]) -> int:
        key = (value, children)
        found = self._ids.get(key)
        if found is None:
            found = len(self.nodes)
            self.nodes.append(key)
            self._ids[key] = found
        return found


def _place_double_array(dag: _DagBuilder, root: int) -> np.ndarray:
    """Lays the DAG out as a darts-clone style double array and returns the uint32 units."""
    nodes = dag.nodes
    # Each distinct node gets one block base; its value (if any) sits at base ^ 0 = base and its
    # children at base ^ label. Bases must be distinct so that no byte can step into a block that
    # belongs to another node.
    capacity = 1 << 16
    used = np.zeros(capacity, dtype=bool)
    is_base = np.zeros(capacity, dtype=bool)
    base_of = [-1] * len(nodes)

    def grow(n: int) -> None:
        nonlocal used, is_base, capacity
        while capacity < n:
            capacity *= 2
        used = np.concatenate([used, np.zeros(capacity - len(used), dtype=bool)])
        is_base = np.concatenate([is_base, np.zeros(capacity - len(is_base), dtype=bool)])

    def slots_of(i: int) -> list[int]:
        value, children = nodes[i]
        slots = [label for label, _ in children]
        if value:
            slots.append(0)
        return slots

    # The root lives at unit 0; its block starts at 256 so that no child lands on unit 0.
    used[0] = True
    is_base[0] = True  # keeps every block away from the root unit
    root_base = 256
    for s in slots_of(root):
        used[root_base ^ s] = True
    is_base[root_base] = True
    base_of[root] = root_base

    # Multi-slot nodes first (they need many free slots at once), searched vectorized; nodes
    # with the same slot pattern are placed one after another, each search continuing from
    # where the previous one succeeded. Then the value-only nodes (complete characters) fill the
    # holes in one go: such a node just needs a position that is free and not yet a base.
    multi = [i for i in range(len(nodes)) if i != root and slots_of(i) != [0]]
    values_only = [i for i in range(len(nodes)) if i != root and slots_of(i) == [0]]
    multi.sort(key=lambda i: (-len(slots_of(i)), tuple(slots_of(i))))
    search_from: dict[tuple[int, ...], int] = {}
    window = 512
    latest = 0
    for i in multi:
        slots = slots_of(i)
        key = tuple(slots)
        offsets = np.array(slots, dtype=np.int64)
        start = search_from.get(key, latest & ~0xFF)
        while True:
            if start + window + 512 >= capacity:
                grow(start + window + 1024)
            bases = np.arange(start, start + window, dtype=np.int64)
            ok = ~is_base[bases] & ~used[bases[:, None] ^ offsets[None, :]].any(axis=1)
            hits = np.flatnonzero(ok)
            if hits.size:
                base = int(bases[hits[0]])
                break
            start += window
        search_from[key] = latest = base + 1
        used[base ^ offsets] = True
        is_base[base] = True
        base_of[i] = base
    grow(capacity + len(values_only) + 1024)
    free = np.flatnonzero(~used & ~is_base)[: len(values_only)]
    used[free] = True
    is_base[free] = True
    for i, pos in zip(values_only, free.tolist()):
        base_of[i] = pos

    size = int(np.flatnonzero(used).max()) + 1
    if size >= 1 << 21:
        raise ValueError("trie too large for the offset encoding")
    units = np.zeros(size, dtype=np.uint64)

    def unit(pos: int, label: int, node: int) -> int:
        offset = pos ^ base_of[node]
        has_value = 0x100 if nodes[node][0] else 0
        return (offset << 10) | has_value | label

    units[0] = unit(0, 0, root)
    for i, (value, children) in enumerate(nodes):
        base = base_of[i]
        if value:
            units[base] = 0x80000000 | value
        for label, child in children:
            units[base ^ label] = unit(base ^ label, label, child)
    return units.astype(np.uint32)


def _utf8_trie(values: np.ndarray, invalid_value: int) -> tuple[np.ndarray, int]:
    """Builds the trie for a per-code-point value table (0 = no entry).

    Besides the UTF-8 encodings of the code points, every ill-formed byte sequence that ICU's
    ``U8_FWD_1`` (the step FastBertNormalizer uses) can produce gets ``invalid_value``: a lone
    byte 0x80-0xFF, a lead byte followed by a valid but incomplete tail.
    Returns (units, value for code point 0).
    """
    dag = _DagBuilder()
    leaf_cache: dict[int, int] = {}

    def leaf(v: int) -> int:
        if v not in leaf_cache:
            leaf_cache[v] = dag.node(v, ())
        return leaf_cache[v]

    block_cache: dict[tuple[bytes, int], int] = {}

    def block64(first_cp: int, own_value: int) -> int | None:
        """Node whose children are the 64 continuation bytes of code points first_cp..+63."""
        chunk = values[first_cp : first_cp + 64]
        key = (chunk.tobytes(), own_value)
        if key not in block_cache:
            children = tuple((0x80 + k, leaf(int(v))) for k, v in enumerate(chunk) if v)
            block_cache[key] = dag.node(own_value, children) if (children or own_value) else -1
        found = block_cache[key]
        return None if found < 0 else found

    root_children: list[tuple[int, int]] = []
    for b in range(1, 0x80):
        if values[b]:
            root_children.append((b, leaf(int(values[b]))))
    for b in range(0x80, 0x100):
        if 0xC2 <= b <= 0xDF:  # 2-byte lead
            node = block64((b & 0x1F) << 6, invalid_value)
        elif 0xE0 <= b <= 0xEF:  # 3-byte lead
            lo, hi = (0xA0 if b == 0xE0 else 0x80), (0x9F if b == 0xED else 0xBF)
            children = []
            for t1 in range(lo, hi + 1):
                child = block64(((b & 0x0F) << 12) | ((t1 & 0x3F) << 6), invalid_value)
                children.append((t1, child))
            node = dag.node(invalid_value, tuple(children))
        elif 0xF0 <= b <= 0xF4:  # 4-byte lead
            lo, hi = (0x90 if b == 0xF0 else 0x80), (0x8F if b == 0xF4 else 0xBF)
            children = []
            for t1 in range(lo, hi + 1):
                grand = []
                for t2 in range(0x80, 0xC0):
                    cp = ((b & 0x07) << 18) | ((t1 & 0x3F) << 12) | ((t2 & 0x3F) << 6)
                    grand.append((t2, block64(cp, invalid_value)))
                children.append((t1, dag.node(invalid_value, tuple(grand))))
            node = dag.node(invalid_value, tuple(children))
        else:  # continuation byte, 0xC0, 0xC1, 0xF5-0xFF: always a lone ill-formed byte
            node = leaf(invalid_value)
        root_children.append((b, node))
    root = dag.node(0, tuple(root_children))
    return _place_double_array(dag, root), int(values[0])


def _flatbuffer_model(trie: np.ndarray, data_for_zero: int, pool: bytes, lower: bool) -> bytes:
    """Serializes a FastBertNormalizerModel table (fields in schema order: lower-case flag,
    trie array, data for code point 0, string pool)."""
    import flatbuffers

    builder = flatbuffers.Builder(len(pool) + 4 * len(trie) + 1024)
    pool_vec = builder.CreateNumpyVector(np.frombuffer(pool, dtype=np.uint8))
    trie_vec = builder.CreateNumpyVector(trie.astype(np.uint32))
    builder.StartObject(4)
    builder.PrependBoolSlot(0, lower, False)
    builder.PrependUOffsetTRelativeSlot(1, trie_vec, 0)
    builder.PrependInt32Slot(2, data_for_zero, 0)
    builder.PrependUOffsetTRelativeSlot(3, pool_vec, 0)
    builder.Finish(builder.EndObject())
    return bytes(builder.Output())


def _cache_path(do_lower_case: bool) -> str | None:
    """Where the built model is cached: keyed by the Unicode version and this module's source,
    so a change to either builds afresh. BERT_TF_CACHE_DIR="" disables the cache."""
    root = os.environ.get("BERT_TF_CACHE_DIR",
                          os.path.join(os.path.expanduser("~"), ".cache", "bert_tf"))
    if not root:
        return None
    with open(__file__, "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()[:16]
    case = "uncased" if do_lower_case else "cased"
    return os.path.join(root, f"normalizer-{case}-{unicodedata.unidata_version}-{source}.bin")


# A cache file is _CACHE_MAGIC, the model's length (8 bytes, little-endian), its SHA-256, then
# the model. tf-text's C++ op trusts the flatbuffer it is given (a truncated one crashes the
# process), so nothing read from disk reaches it unless length and hash match.
_CACHE_MAGIC = b"BTFNORM1"
_CACHE_HEADER = len(_CACHE_MAGIC) + 8 + 32


def _read_cached(path: str) -> bytes | None:
    """The cached model, or None when the file is absent, unreadable or damaged."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < _CACHE_HEADER or not data.startswith(_CACHE_MAGIC):
        return None
    size = int.from_bytes(data[len(_CACHE_MAGIC):len(_CACHE_MAGIC) + 8], "little")
    digest, model = data[len(_CACHE_MAGIC) + 8:_CACHE_HEADER], data[_CACHE_HEADER:]
    if len(model) != size or hashlib.sha256(model).digest() != digest:
        return None
    return model


def _write_cached(path: str, model: bytes) -> None:
    """Stores the model atomically (concurrent processes never read a partial file); a cache
    directory that cannot be written is skipped: the cache only saves time."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(_CACHE_MAGIC + len(model).to_bytes(8, "little")
                    + hashlib.sha256(model).digest() + model)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


@functools.lru_cache(maxsize=2)
def build_normalizer_model(do_lower_case: bool) -> bytes:
    """A FastBertNormalizer model (flatbuffer bytes) implementing Google's character rules.

    See `bert_tf.text.tokenizer`'s docstring. Building takes about a second, so the result is
    cached in the process and on disk (see `_cache_path`); a damaged cache file is rebuilt.
    """
    path = _cache_path(bool(do_lower_case))
    model = _read_cached(path) if path else None
    if model is None:
        model = _build_normalizer_model(bool(do_lower_case))
        if path:
            _write_cached(path, model)
    return model


def _build_normalizer_model(do_lower_case: bool) -> bytes:
    mapping = _char_map(bool(do_lower_case))
    pool = bytearray()
    pool_offsets: dict[bytes, int] = {}
    values = np.zeros(0x110000, dtype=np.int64)

    def encode(mapped: str) -> int:
        data = mapped.encode("utf-8")
        if len(data) > _NORM_MAX_LEN:
            raise ValueError(f"normalized string too long: {mapped!r}")
        if not data:
            return _NORM_DIFFERENT
        offset = pool_offsets.get(data)
        if offset is None:
            offset = len(pool)
            pool.extend(data)
            pool_offsets[data] = offset
        if offset > _NORM_MAX_OFFSET:
            raise ValueError("normalizer string pool too large")
        return _NORM_DIFFERENT | (offset << _NORM_LEN_BITS) | len(data)

    for cp, mapped in mapping.items():
        values[cp] = encode(mapped)
    trie, data_for_zero = _utf8_trie(values, invalid_value=_NORM_DIFFERENT)
    return _flatbuffer_model(trie, data_for_zero, bytes(pool), bool(do_lower_case))
