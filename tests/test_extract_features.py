"""The first main job: packing, feature extraction, extract_features.py and random_init."""
import json
import os
import subprocess
import sys

import google_ckpt
import numpy as np
import numpy_bert
import pytest

from bert_tf import BertEncoder, BertPretrainer
from bert_tf.checkpoints import build_from_google_checkpoint
from bert_tf.checkpoints.random_init import write_random_checkpoint
from bert_tf.config import BertConfig
from bert_tf.features import extract_features_to_file, feature_matrix, parse_layers
from bert_tf.features import read_examples
from bert_tf.text import BertPreprocessor, FullTokenizer, pack_tokens, truncate_seq_pair

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".",
         "who", "was", "jim", "henson", "?", "a", "puppet", "##eer", "un", "##aff", "##able"]


# ----------------------------------------------------------------------------- packing
def test_truncate_seq_pair_pops_from_longer_and_from_b_on_ties():
    a, b = list("abcde"), list("xy")
    truncate_seq_pair(a, b, 5)
    assert (a, b) == (list("abc"), list("xy"))
    a, b = list("abc"), list("xyz")
    truncate_seq_pair(a, b, 4)  # tie 3/3 → pop B, then A (3 > 2)
    assert (a, b) == (list("ab"), list("xy"))
    a, b = list("ab"), list("x")
    truncate_seq_pair(a, b, 10)
    assert (a, b) == (list("ab"), list("x"))


def test_pack_tokens_single_and_pair():
    tokens, types = pack_tokens(["a", "b", "c"], None, 4)
    assert tokens == ["[CLS]", "a", "b", "[SEP]"] and types == [0, 0, 0, 0]
    tokens, types = pack_tokens(["a", "b", "c"], ["x", "y"], 6)
    assert tokens == ["[CLS]", "a", "b", "[SEP]", "x", "[SEP]"]
    assert types == [0, 0, 0, 0, 1, 1]
    tokens, types = pack_tokens([], [], 3)
    assert tokens == ["[CLS]", "[SEP]", "[SEP]"] and types == [0, 0, 1]


@pytest.mark.parametrize("tokens_b, seq_length", [(None, 1), (["x"], 2)])
def test_pack_tokens_rejects_too_short_seq_length(tokens_b, seq_length):
    with pytest.raises(ValueError, match="seq_length must be at least"):
        pack_tokens(["a"], tokens_b, seq_length)


# ----------------------------------------------------------------------------- reading
def test_read_examples_pairs_single_and_bad_bytes(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"Who was Jim Henson ? ||| Jim Henson was a puppeteer\n"
                     b"  the cat\xff sat  \n\nno|||split\n")
    examples = read_examples(path)
    assert [(e.unique_id, e.text_a, e.text_b) for e in examples] == [
        (0, "Who was Jim Henson ?", "Jim Henson was a puppeteer"),
        (1, "the cat sat", None),
        (2, "", None),
        (3, "no|||split", None),
    ]


def test_read_examples_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="input file not found: .*nope.txt"):
        read_examples(tmp_path / "nope.txt")


def test_parse_layers():
    assert parse_layers("-1,-2", 4) == [-1, -2]
    assert parse_layers("0, 3", 4) == [0, 3]
    with pytest.raises(ValueError, match=r"layers \[-5\] out of range .* 4 layers"):
        parse_layers("-1,-5", 4)
    with pytest.raises(ValueError, match="comma-separated integers"):
        parse_layers("last", 4)
    with pytest.raises(ValueError, match="empty"):
        parse_layers("", 4)


# ----------------------------------------------------------------------------- numerics
@pytest.fixture
def google_dir(tmp_path):
    config = google_ckpt.tiny_config(vocab_size=len(VOCAB))
    prefix = google_ckpt.write_google_checkpoint(tmp_path / "ckpt", config, vocab_tokens=VOCAB,
                                                 seed=3)
    return tmp_path / "ckpt", prefix, config


def test_extract_features_matches_numpy_reference(tmp_path, google_dir):
    directory, prefix, config = google_dir
    (tmp_path / "in.txt").write_text("The cat sat on the mat.\n"
                                     "Who was Jim Henson? ||| Jim Henson was a puppeteer\n"
                                     "the mat\n")
    encoder = build_from_google_checkpoint(BertEncoder, directory)
    pre = BertPreprocessor(str(directory / "vocab.txt"), seq_length=16)
    # batch_size 3 mixes single texts and a pair in one batch; output order must be kept.
    n = extract_features_to_file(encoder, pre, tmp_path / "in.txt", tmp_path / "out.jsonl",
                                 [-1, 0], batch_size=3)
    assert n == 3
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert [r["linex_index"] for r in records] == [0, 1, 2]
    assert [f["token"] for f in records[1]["features"]] == [
        "[CLS]", "who", "was", "jim", "henson", "?", "[SEP]", "jim", "henson", "was", "a",
        "puppet", "##eer", "[SEP]"]
    assert [entry["index"] for entry in records[0]["features"][0]["layers"]] == [-1, 0]

    arrays = google_ckpt.read_checkpoint_arrays(prefix)
    reference = FullTokenizer(str(directory / "vocab.txt"))
    for record, example in zip(records, read_examples(tmp_path / "in.txt")):
        tokens_b = reference.tokenize(example.text_b) if example.text_b else None
        tokens, types = pack_tokens(reference.tokenize(example.text_a), tokens_b, 16)
        assert [f["token"] for f in record["features"]] == tokens
        ids = reference.convert_tokens_to_ids(tokens)
        pad = 16 - len(ids)
        ref = numpy_bert.bert_forward(arrays, config, np.array([ids + [0] * pad]),
                                      np.array([[1] * len(ids) + [0] * pad]),
                                      np.array([types + [0] * pad]))
        for layer in (-1, 0):
            expected = ref["encoder_outputs"][layer][0, :len(ids)]
            np.testing.assert_allclose(feature_matrix(record, layer), expected, atol=2e-5)


def test_extract_features_rejects_seq_length_beyond_positions(tmp_path, google_dir):
    directory, _, config = google_dir
    (tmp_path / "in.txt").write_text("the cat\n")
    encoder = build_from_google_checkpoint(BertEncoder, directory)
    with pytest.raises(ValueError, match="max_seq_length 41 exceeds .*max_position_embeddings"):
        extract_features_to_file(encoder, BertPreprocessor(VOCAB, seq_length=41),
                                 tmp_path / "in.txt", tmp_path / "o.jsonl", [-1])


# ----------------------------------------------------------------------------- random_init
def test_random_init_writes_a_loadable_google_checkpoint(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    config = BertConfig.from_json_file(os.path.join(REPO, "configs", "bert_tiny.json"))
    prefix = write_random_checkpoint(config, str(vocab_file), str(tmp_path / "out"), seed=1)
    model = build_from_google_checkpoint(BertPretrainer, tmp_path / "out")
    assert prefix.endswith("bert_model.ckpt")
    assert model.config.vocab_size == len(VOCAB)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (128, 2)
    assert (tmp_path / "out" / "vocab.txt").read_text() == vocab_file.read_text()
    # Truncated normal(0.02) cut at 2 stddev has stddev 0.02 * 0.8796.
    kernel = model.encoder.transformer_blocks[0]._feedforward_intermediate_dense.kernel.numpy()
    assert abs(kernel.std() - 0.02 * 0.8796) < 5e-4 and np.abs(kernel).max() <= 0.04 + 1e-6


# ----------------------------------------------------------------------------- the script
def _run_script(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(REPO, "extract_features.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_script_end_to_end_and_case_warning(tmp_path, google_dir):
    directory, _, _ = google_dir
    (tmp_path / "in.txt").write_text("the cat sat\nunaffable ||| the mat\n")
    result = _run_script(f"--input_file={tmp_path / 'in.txt'}",
                         f"--output_file={tmp_path / 'out.jsonl'}",
                         f"--init_checkpoint={directory}", "--layers=-1", "--max_seq_length=8",
                         "--do_lower_case=false")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert [f["token"] for f in records[1]["features"]] == [
        "[CLS]", "un", "##aff", "##able", "[SEP]", "the", "mat", "[SEP]"]
    assert len(records[0]["features"][0]["layers"][0]["values"]) == 32
    assert "looks uncased" in result.stderr and "do_lower_case=False" in result.stderr


@pytest.mark.parametrize("flag, expected", [
    ("--input_file={tmp}/missing.txt", "input file not found: {tmp}/missing.txt"),
    ("--layers=-3", "layers [-3] out of range for a model with 2 layers"),
    ("--init_checkpoint={tmp}/nowhere/bert_model.ckpt", "checkpoint not found: {tmp}/nowhere"),
    ("--vocab_file={tmp}/missing_vocab.txt", "{tmp}/missing_vocab.txt"),
    ("--max_seq_length=41", "seq_length 41 exceeds the model's max_position_embeddings (40)"),
])
def test_script_reports_bad_input_without_traceback(tmp_path, google_dir, flag, expected):
    directory, _, _ = google_dir
    (tmp_path / "in.txt").write_text("the cat\n")
    args = {"--input_file": f"--input_file={tmp_path / 'in.txt'}",
            "--init_checkpoint": f"--init_checkpoint={directory}",
            "--output_file": f"--output_file={tmp_path / 'o.jsonl'}",
            "--max_seq_length": "--max_seq_length=8"}
    args[flag.split("=")[0]] = flag.format(tmp=tmp_path)
    result = _run_script(*args.values())
    assert result.returncode == 2
    assert "extract_features.py: error:" in result.stderr
    assert expected.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
