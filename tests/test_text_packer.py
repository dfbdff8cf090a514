"""Tests for bert_tf.text.packer: in-graph packing (ragged path and dense TFLite path)."""
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.text.packer import packed_lengths, pack_inputs, pack_inputs_tflite
from bert_tf.text.packing import pack_tokens, truncate_seq_pair

CLS, SEP, PAD = 101, 102, 0
KEYS = ("input_word_ids", "input_mask", "input_type_ids")
TFLITE_DEPRECATION = "ignore:.*tf.lite.Interpreter is deprecated:UserWarning"
IMPLS = [pytest.param(pack_inputs, id="ragged"), pytest.param(pack_inputs_tflite, id="dense")]


def ragged(rows, dtype=tf.int32, splits_dtype=tf.int64):
    values = np.array([t for r in rows for t in r], dtype=dtype.as_numpy_dtype)
    splits = np.cumsum([0] + [len(r) for r in rows])
    return tf.RaggedTensor.from_row_splits(values, tf.constant(splits, splits_dtype))


def as_numpy(out):
    assert set(out) == set(KEYS)
    for k in KEYS:
        assert out[k].dtype == tf.int32, k
    return {k: out[k].numpy() for k in KEYS}


def reference(rows_a, rows_b, seq_length, cls_id=CLS, sep_id=SEP, pad_id=PAD):
    """Google's rules via the pure-Python pack_tokens, padded to seq_length."""
    ids, masks, types = [], [], []
    for i, a in enumerate(rows_a):
        tokens, type_ids = pack_tokens(a, None if rows_b is None else rows_b[i], seq_length)
        word = [cls_id if t == "[CLS]" else sep_id if t == "[SEP]" else t for t in tokens]
        pad = seq_length - len(word)
        ids.append(word + [pad_id] * pad)
        masks.append([1] * len(word) + [0] * pad)
        types.append(type_ids + [0] * pad)
    shape = (len(rows_a), seq_length)
    return {"input_word_ids": np.array(ids, np.int32).reshape(shape),
            "input_mask": np.array(masks, np.int32).reshape(shape),
            "input_type_ids": np.array(types, np.int32).reshape(shape)}


def assert_same(got, want):
    for k in KEYS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# Closed form vs Google's loop.


def test_closed_form_matches_truncate_seq_pair_exhaustively():
    la, lb = np.meshgrid(np.arange(13), np.arange(13), indexing="ij")
    la, lb = la.ravel(), lb.ravel()
    for m in range(16):
        ka, kb = packed_lengths(tf.constant(la), tf.constant(lb), m + 3)
        want = []
        for x, y in zip(la, lb):
            a, b = list(range(x)), list(range(y))
            truncate_seq_pair(a, b, m)
            want.append((len(a), len(b)))
        np.testing.assert_array_equal(np.stack([ka.numpy(), kb.numpy()], -1), np.array(want),
                                      err_msg=f"m={m}")
    ka, kb = packed_lengths(tf.constant(la), None, 7)
    assert kb is None
    np.testing.assert_array_equal(ka.numpy(), np.minimum(la, 5))


def test_tf_text_trimmers_on_a_tie():
    """Why pack_inputs uses RoundRobinTrimmer: on equal lengths Google pops from B first.
    ShrinkLongestTrimmer pops from A (first argmax), WaterfallTrimmer fills A first."""
    import tensorflow_text as text

    a, b = ragged([[1, 2]]), ragged([[3, 4]])
    google = ([1, 2], [3, 4])
    truncate_seq_pair(*google, 3)
    assert google == ([1, 2], [3])

    def lengths(trimmer):
        return tuple(int(t.row_lengths()[0]) for t in trimmer.trim([a, b]))

    assert lengths(text.RoundRobinTrimmer(3)) == (2, 1)
    assert lengths(text.ShrinkLongestTrimmer(3)) == (1, 2)
    assert lengths(text.WaterfallTrimmer(3)) == (2, 1)
    assert lengths(text.WaterfallTrimmer(2)) == (2, 0)  # Google: (1, 1)


# ---------------------------------------------------------------------------------------------
# Hand cases: exact tensors.

HAND_CASES = [
    # (name, a, b, seq_length, pad_id, word_ids, type_ids); mask = 1 where not padding
    ("single", [1, 2, 3], None, 8, 0,
     [101, 1, 2, 3, 102, 0, 0, 0], [0] * 8),
    ("single_truncated", [1, 2, 3, 4, 5, 6], None, 5, 0,
     [101, 1, 2, 3, 102], [0] * 5),
    ("pair", [1, 2], [3, 4, 5], 10, 0,
     [101, 1, 2, 102, 3, 4, 5, 102, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]),
    ("truncate_a_only", [1, 2, 3, 4, 5, 6], [11, 12], 8, 0,
     [101, 1, 2, 3, 102, 11, 12, 102], [0, 0, 0, 0, 0, 1, 1, 1]),
    ("truncate_b_only", [1, 2], [11, 12, 13, 14, 15, 16], 8, 0,
     [101, 1, 2, 102, 11, 12, 13, 102], [0, 0, 0, 0, 1, 1, 1, 1]),
    # equal lengths, odd budget 5: pop B, A, B -> A keeps 3, B keeps 2
    ("tie_odd_budget", [1, 2, 3, 4], [11, 12, 13, 14], 8, 0,
     [101, 1, 2, 3, 102, 11, 12, 102], [0, 0, 0, 0, 0, 1, 1, 1]),
    # equal lengths, even budget 6 -> 3 and 3
    ("tie_even_budget", [1, 2, 3, 4], [11, 12, 13, 14], 9, 0,
     [101, 1, 2, 3, 102, 11, 12, 13, 102], [0, 0, 0, 0, 0, 1, 1, 1, 1]),
    # A longer by one, budget 7: pop A (4,4), pop B (4,3)
    ("tie_reached_from_a", [1, 2, 3, 4, 5], [11, 12, 13, 14], 10, 0,
     [101, 1, 2, 3, 4, 102, 11, 12, 13, 102], [0] * 6 + [1] * 4),
    # B longer by one, budget 7: pop B (4,4), pop B (4,3)
    ("tie_reached_from_b", [1, 2, 3, 4], [11, 12, 13, 14, 15], 10, 0,
     [101, 1, 2, 3, 4, 102, 11, 12, 13, 102], [0] * 6 + [1] * 4),
    ("both_cut_heavily", list(range(1, 30)), list(range(31, 50)), 7, 0,
     [101, 1, 2, 102, 31, 32, 102], [0, 0, 0, 0, 1, 1, 1]),
    ("empty_single", [], None, 4, 0, [101, 102, 0, 0], [0] * 4),
    ("empty_pair", [], [], 5, 0, [101, 102, 102, 0, 0], [0, 0, 1, 0, 0]),
    ("empty_a", [], [5, 6], 6, 0, [101, 102, 5, 6, 102, 0], [0, 0, 1, 1, 1, 0]),
    ("empty_b", [5, 6], [], 6, 0, [101, 5, 6, 102, 102, 0], [0, 0, 0, 0, 1, 0]),
    ("min_seq_length_pair", [1, 2], [3], 3, 0, [101, 102, 102], [0, 0, 1]),
    ("min_seq_length_single", [1, 2], None, 2, 0, [101, 102], [0, 0]),
    ("padding_with_pad_id", [7], [8], 8, 9,
     [101, 7, 102, 8, 102, 9, 9, 9], [0, 0, 0, 1, 1, 0, 0, 0]),
]


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_cases(impl):
    for name, a, b, seq_length, pad_id, word_ids, type_ids in HAND_CASES:
        seg_b = None if b is None else ragged([b])
        got = as_numpy(impl(ragged([a]), seg_b, seq_length=seq_length, cls_id=CLS, sep_id=SEP,
                            pad_id=pad_id))
        n_real = 2 + len(a) + (0 if b is None else 1 + len(b))
        want_mask = [1 if i < min(n_real, seq_length) else 0 for i in range(seq_length)]
        np.testing.assert_array_equal(got["input_word_ids"], [word_ids], err_msg=name)
        np.testing.assert_array_equal(got["input_mask"], [want_mask], err_msg=name)
        np.testing.assert_array_equal(got["input_type_ids"], [type_ids], err_msg=name)
        # and the pure-Python reference agrees with the hand-written expectation
        assert_same(got, reference([a], None if b is None else [b], seq_length, pad_id=pad_id))


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_cases_as_one_batch(impl):
    """Rows of different lengths in one batch do not interfere."""
    pairs = [c for c in HAND_CASES if c[2] is not None]
    rows_a, rows_b = [c[1] for c in pairs], [c[2] for c in pairs]
    got = as_numpy(impl(ragged(rows_a), ragged(rows_b), seq_length=9, cls_id=CLS, sep_id=SEP))
    assert_same(got, reference(rows_a, rows_b, 9))


# ---------------------------------------------------------------------------------------------
# Exhaustive / random equality of (a), (b) and the Python reference.


def test_all_small_length_pairs_match_reference():
    grid = [(x, y) for x in range(13) for y in range(13)]
    rows_a = [list(range(1, x + 1)) for x, _ in grid]
    rows_b = [list(range(1001, 1001 + y)) for _, y in grid]
    a, b = ragged(rows_a), ragged(rows_b)
    for seq_length in range(3, 19):  # budgets 0..15
        want = reference(rows_a, rows_b, seq_length)
        assert_same(as_numpy(pack_inputs(a, b, seq_length=seq_length, cls_id=CLS,
                                         sep_id=SEP)), want)
        assert_same(as_numpy(pack_inputs_tflite(a, b, seq_length=seq_length, cls_id=CLS,
                                                sep_id=SEP)), want)


def test_random_batches_match_reference():
    rng = np.random.default_rng(1234)
    for seq_length in range(3, 25):
        batch = int(rng.integers(1, 40))
        rows_a = [rng.integers(1000, 30000, rng.integers(0, 21)).tolist() for _ in range(batch)]
        rows_b = [rng.integers(1000, 30000, rng.integers(0, 21)).tolist() for _ in range(batch)]
        a, b = ragged(rows_a), ragged(rows_b)
        kw = dict(seq_length=seq_length, cls_id=2, sep_id=3, pad_id=1)
        for rb, seg_b in ((rows_b, b), (None, None)):
            want = reference(rows_a, rb, seq_length, cls_id=2, sep_id=3, pad_id=1)
            got_a = as_numpy(pack_inputs(a, seg_b, **kw))
            got_b = as_numpy(pack_inputs_tflite(a, seg_b, **kw))
            assert_same(got_a, want)
            assert_same(got_b, want)


# ---------------------------------------------------------------------------------------------
# Input forms.


@pytest.mark.parametrize("impl", IMPLS)
def test_int64_ids_and_int32_splits(impl):
    rows_a, rows_b = [[5, 6, 7], [], [8]], [[9], [10, 11], []]
    want = reference(rows_a, rows_b, 7)
    for dtype, splits_dtype in ((tf.int64, tf.int64), (tf.int32, tf.int32), (tf.int64, tf.int32)):
        got = impl(ragged(rows_a, dtype, splits_dtype), ragged(rows_b, dtype, splits_dtype),
                   seq_length=7, cls_id=CLS, sep_id=SEP)
        assert_same(as_numpy(got), want)


@pytest.mark.parametrize("impl", IMPLS)
def test_ids_as_scalar_tensors(impl):
    rows_a, rows_b = [[5, 6, 7], []], [[9], [10, 11]]
    got = impl(ragged(rows_a), ragged(rows_b), seq_length=8, cls_id=tf.constant(CLS, tf.int64),
               sep_id=np.int32(SEP), pad_id=tf.constant(4))
    assert_same(as_numpy(got), reference(rows_a, rows_b, 8, pad_id=4))


@pytest.mark.parametrize("impl", IMPLS)
def test_ragged_rank_2_words_pieces_is_flattened(impl):
    words = tf.ragged.constant([[[1, 2], [3]], [], [[4], [], [5, 6, 7]]], dtype=tf.int32)
    got = impl(words, None, seq_length=6, cls_id=CLS, sep_id=SEP)
    assert_same(as_numpy(got), reference([[1, 2, 3], [], [4, 5, 6, 7]], None, 6))


def test_dense_path_takes_values_and_row_splits():
    rows_a, rows_b = [[5, 6, 7], [], [8]], [[9], [10, 11], []]
    a, b = ragged(rows_a), ragged(rows_b)
    got = pack_inputs_tflite((a.values, a.row_splits), (b.values, b.row_splits), seq_length=7,
                             cls_id=CLS, sep_id=SEP)
    assert_same(as_numpy(got), reference(rows_a, rows_b, 7))


# ---------------------------------------------------------------------------------------------
# Errors and edge cases.


@pytest.mark.parametrize("impl", IMPLS)
def test_seq_length_too_small(impl):
    a = ragged([[1, 2]])
    for bad in (2, 1, 0, -3):
        with pytest.raises(ValueError, match=r"seq_length must be at least 3.*got " + str(bad)):
            impl(a, a, seq_length=bad, cls_id=CLS, sep_id=SEP)
    for bad in (1, 0):
        with pytest.raises(ValueError, match=r"seq_length must be at least 2.*got " + str(bad)):
            impl(a, None, seq_length=bad, cls_id=CLS, sep_id=SEP)
    with pytest.raises(TypeError, match="seq_length"):
        impl(a, None, seq_length="8", cls_id=CLS, sep_id=SEP)
    with pytest.raises(TypeError, match="seq_length"):
        impl(a, None, seq_length=8.0, cls_id=CLS, sep_id=SEP)


def test_bad_segment_types():
    with pytest.raises(TypeError, match="segment_a must be a tf.RaggedTensor"):
        pack_inputs(tf.constant([[1, 2]]), None, seq_length=4, cls_id=CLS, sep_id=SEP)
    with pytest.raises(TypeError, match="segment_b"):
        pack_inputs_tflite(ragged([[1]]), tf.constant([1]), seq_length=4, cls_id=CLS, sep_id=SEP)
    with pytest.raises(ValueError, match="cls_id must be a scalar"):
        pack_inputs(ragged([[1]]), None, seq_length=4, cls_id=[1, 2], sep_id=SEP)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batch(impl):
    empty = ragged([])
    for seg_b, seq_length in ((empty, 5), (None, 4)):
        got = impl(empty, seg_b, seq_length=seq_length, cls_id=CLS, sep_id=SEP)
        for k in KEYS:
            assert got[k].shape == (0, seq_length), k
            assert got[k].dtype == tf.int32


# ---------------------------------------------------------------------------------------------
# Graph mode: tf.function with unknown batch, tf.data.


@pytest.mark.parametrize("impl", IMPLS)
def test_tf_function_unknown_batch(impl):
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)

    @tf.function(input_signature=[spec, spec])
    def fn(a, b):
        out = impl(a, b, seq_length=9, cls_id=CLS, sep_id=SEP)
        for k in KEYS:
            assert out[k].shape.as_list() == [None, 9]
        return out

    for rows_a, rows_b in (([[1, 2, 3]], [[4]]),
                           ([[1] * 10, [], [2, 3]], [[4] * 3, [5], [6] * 12]),
                           ([], [])):
        assert_same(as_numpy(fn(ragged(rows_a), ragged(rows_b))), reference(rows_a, rows_b, 9))


@pytest.mark.parametrize("impl", IMPLS)
def test_tf_data_map(impl):
    rng = np.random.default_rng(7)
    rows_a = [rng.integers(1, 500, size=rng.integers(0, 15)).tolist() for _ in range(11)]
    rows_b = [rng.integers(1, 500, size=rng.integers(0, 15)).tolist() for _ in range(11)]
    ds = tf.data.Dataset.from_tensor_slices((ragged(rows_a), ragged(rows_b))).ragged_batch(4)
    ds = ds.map(lambda a, b: impl(a, b, seq_length=12, cls_id=CLS, sep_id=SEP))
    batches = list(ds)
    assert [int(x["input_word_ids"].shape[0]) for x in batches] == [4, 4, 3]
    got = {k: np.concatenate([x[k].numpy() for x in batches]) for k in KEYS}
    assert_same(got, reference(rows_a, rows_b, 12))


# ---------------------------------------------------------------------------------------------
# TFLite: the dense path converts with builtins only and runs in the plain interpreter.


@pytest.fixture(scope="module")
def tflite_pair_model():
    vec = tf.TensorSpec([None], tf.int32)
    splits = tf.TensorSpec([None], tf.int64)

    @tf.function(input_signature=[vec, splits, vec, splits])
    def pack(values_a, splits_a, values_b, splits_b):
        out = pack_inputs_tflite((values_a, splits_a), (values_b, splits_b), seq_length=10,
                                 cls_id=CLS, sep_id=SEP, pad_id=PAD)
        return tuple(out[k] for k in KEYS)  # outputs Identity, Identity_1, Identity_2 in KEYS order

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [pack.get_concrete_function()], pack)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()  # fails if any op would need the Flex delegate
    return model


def run_tflite(model, rows_a, rows_b):
    a, b = ragged(rows_a), ragged(rows_b)
    feeds = {"values_a": a.values.numpy(), "splits_a": a.row_splits.numpy(),
             "values_b": b.values.numpy(), "splits_b": b.row_splits.numpy()}
    interpreter = tf.lite.Interpreter(model_content=model)
    for d in interpreter.get_input_details():
        interpreter.resize_tensor_input(d["index"], feeds[d["name"]].shape)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], feeds[d["name"]])
    interpreter.invoke()
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    assert sorted(outputs) == ["Identity", "Identity_1", "Identity_2"]
    return {k: interpreter.get_tensor(outputs[name])
            for k, name in zip(KEYS, ["Identity", "Identity_1", "Identity_2"])}


@pytest.mark.filterwarnings(TFLITE_DEPRECATION)
def test_tflite_model_has_only_builtin_ops(tflite_pair_model):
    interpreter = tf.lite.Interpreter(model_content=tflite_pair_model)
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    assert ops, "no ops found"
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    assert {"GATHER", "SELECT_V2"} <= ops
    assert b"Flex" not in tflite_pair_model


@pytest.mark.filterwarnings(TFLITE_DEPRECATION)
def test_tflite_matches_tf(tflite_pair_model):
    cases = [([[1, 2, 3]], [[4, 5]]),                         # batch 1, as with string input
             ([[7] * 12], [[8] * 3]),                         # truncation
             ([[]], [[]]),                                    # empty segments
             ([[1, 2], [], [3] * 9], [[4], [5] * 20, [6] * 9]),  # batch > 1
             ([], [])]                                        # empty batch
    for rows_a, rows_b in cases:
        got = run_tflite(tflite_pair_model, rows_a, rows_b)
        want = as_numpy(pack_inputs(ragged(rows_a), ragged(rows_b), seq_length=10, cls_id=CLS,
                                    sep_id=SEP, pad_id=PAD))
        for k in KEYS:
            assert got[k].dtype == np.int32, k
        assert_same(got, want)


@pytest.mark.filterwarnings(TFLITE_DEPRECATION)
def test_tflite_single_text_from_ragged_components():
    """A single-text model whose tf.function takes a RaggedTensor-shaped pair of components."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int32)])
    def pack(values, splits):
        segment = tf.RaggedTensor.from_row_splits(values, splits, validate=False)
        out = pack_inputs_tflite(segment, None, seq_length=6, cls_id=CLS, sep_id=SEP, pad_id=PAD)
        return tuple(out[k] for k in KEYS)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [pack.get_concrete_function()], pack)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    rows = [[1, 2, 3, 4, 5, 6, 7], [], [8]]
    seg = ragged(rows, tf.int64, tf.int32)
    interpreter = tf.lite.Interpreter(model_content=model)
    inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    feeds = {"values": seg.values.numpy(), "splits": seg.row_splits.numpy()}
    for name, value in feeds.items():
        interpreter.resize_tensor_input(inputs[name], value.shape)
    interpreter.allocate_tensors()
    for name, value in feeds.items():
        interpreter.set_tensor(inputs[name], value)
    interpreter.invoke()
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    got = {k: interpreter.get_tensor(outputs[n])
           for k, n in zip(KEYS, ["Identity", "Identity_1", "Identity_2"])}
    assert_same(got, reference(rows, None, 6))
