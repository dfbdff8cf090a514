"""Sentence embeddings: sentence-transformers layout, pooling numerics, .keras, transformers parity."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import google_ckpt
import hf_ckpt
import numpy_bert
import bert_tf
from bert_tf.checkpoints import CheckpointError
from bert_tf.models.sentence_embedder import SentenceEmbedder
from bert_tf.pretrained import PretrainedError
from bert_tf.text import FullTokenizer

GOOGLE_CONFIG = google_ckpt.tiny_config(hidden_act="gelu_exact")  # HF's "gelu"
MAX_SEQ_LENGTH = 9
TEXTS = ["The cat sat on the mat.", "A dog runs fast!", "Paris is the capital of France, "
         "the capital of France is Paris.", ""]


def write_sentence_transformer(directory, arrays, pooling=("mean",), normalize=True,
                               extra_modules=()):
    return hf_ckpt.write_sentence_transformer(directory, GOOGLE_CONFIG, arrays, pooling,
                                              normalize, extra_modules, MAX_SEQ_LENGTH)


@pytest.fixture(scope="module")
def arrays():
    return google_ckpt.random_google_arrays(GOOGLE_CONFIG, with_pretraining_heads=False, seed=11)


def reference_embeddings(arrays, directory, pooling, normalize):
    """sentence-transformers' computation in NumPy: tokenize (Google's Python tokenizer),
    truncate to max_seq_length with [CLS]/[SEP], BERT forward, pool over real tokens, L2."""
    tokenizer = FullTokenizer(os.path.join(directory, "vocab.txt"), do_lower_case=True)
    rows = [[2] + tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t))[:MAX_SEQ_LENGTH - 2]
            + [3] for t in TEXTS]
    length = max(map(len, rows))  # sentence-transformers pads to the batch's longest
    ids = np.array([r + [0] * (length - len(r)) for r in rows])
    mask = (np.arange(length)[None] < np.array([len(r) for r in rows])[:, None]).astype(float)
    tokens = numpy_bert.bert_forward(arrays, GOOGLE_CONFIG, ids, mask)["sequence_output"]
    m = mask[:, :, None]
    parts = {"cls": tokens[:, 0], "max": np.where(m > 0, tokens, -1e9).max(1),
             "mean": (tokens * m).sum(1) / np.maximum(m.sum(1), 1e-9)}
    out = np.concatenate([parts[p] for p in ("cls", "max", "mean") if p in pooling], -1)
    if normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out


@pytest.mark.parametrize("pooling,normalize", [(("mean",), True), (("cls",), False),
                                               (("max",), False), (("mean", "cls"), True)])
def test_embeddings_equal_sentence_transformers_computation(tmp_path, arrays, pooling,
                                                            normalize):
    directory = write_sentence_transformer(str(tmp_path / "st"), arrays, pooling, normalize)
    loaded = bert_tf.from_pretrained(directory)
    assert (loaded.task, loaded.format, loaded.max_seq_length) == (
        "embedding", "sentence_transformers", MAX_SEQ_LENGTH)
    model = loaded.model
    assert model.embedding_size == 32 * len(pooling)
    got = model(TEXTS).numpy()
    assert got.shape == (4, 32 * len(pooling))
    np.testing.assert_allclose(got, reference_embeddings(arrays, directory, pooling, normalize),
                               atol=3e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-6)


def test_keras_round_trip(tmp_path, arrays):
    directory = write_sentence_transformer(str(tmp_path / "st"), arrays, ("max",), True)
    model = bert_tf.from_pretrained(directory).model
    path = str(tmp_path / "embedder.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert isinstance(again, SentenceEmbedder)
    assert again.pooling_modes == ("max",) and again.normalize
    np.testing.assert_array_equal(again(TEXTS), model(TEXTS))


def test_unsupported_layouts_are_refused(tmp_path, arrays):
    dense = write_sentence_transformer(
        str(tmp_path / "dense"), arrays, extra_modules=[
            {"idx": 3, "name": "3", "path": "3_Dense",
             "type": "sentence_transformers.models.Dense"}])
    with pytest.raises(CheckpointError, match="Dense.*not supported"):
        bert_tf.from_pretrained(dense)
    weighted = write_sentence_transformer(str(tmp_path / "w"), arrays, ("weightedmean",))
    with pytest.raises(CheckpointError, match="weightedmean"):
        bert_tf.from_pretrained(weighted)
    with pytest.raises(PretrainedError, match="embedding"):
        bert_tf.from_pretrained(weighted, task="classifier")


TRANSFORMERS = hf_ckpt.transformers_or_none()


@pytest.mark.skipif(TRANSFORMERS is None,
                    reason="transformers/torch not installed (bench extra)")
def test_mean_pooling_matches_transformers_bert(tmp_path, arrays):
    """The Transformer module of sentence-transformers is transformers' BertModel: pool its
    last_hidden_state the sentence-transformers way and compare."""
    import torch
    directory = write_sentence_transformer(str(tmp_path / "st"), arrays, ("mean",), True)
    model = bert_tf.from_pretrained(directory).model
    inputs = model.preprocessor(TEXTS)
    theirs = TRANSFORMERS.BertModel.from_pretrained(directory,
                                                    add_pooling_layer=False).eval()
    mask = np.asarray(inputs["input_mask"])
    with torch.no_grad():
        hidden = theirs(input_ids=torch.tensor(np.asarray(inputs["input_word_ids"]),
                                               dtype=torch.long),
                        attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    pooled /= np.linalg.norm(pooled, axis=-1, keepdims=True)
    np.testing.assert_allclose(model(TEXTS), pooled, atol=1e-5)
