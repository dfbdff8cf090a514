"""Test support: write Hugging Face BERT directories (config.json + model.safetensors + vocab.txt).

Written from Google-named arrays (``google_ckpt.random_google_arrays``) with this file's own,
explicit name table — the PyTorch module paths of transformers' ``modeling_bert.py`` — so the
loader under test is checked against an independent mapping. Nothing here imports ``bert_tf``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping

import numpy as np
from safetensors.numpy import save_file

# Google leaf scope -> HF module path (inside one encoder layer).
_LAYER_PARTS = {
    "attention/self/query": "attention.self.query",
    "attention/self/key": "attention.self.key",
    "attention/self/value": "attention.self.value",
    "attention/output/dense": "attention.output.dense",
    "attention/output/LayerNorm": "attention.output.LayerNorm",
    "intermediate/dense": "intermediate.dense",
    "output/dense": "output.dense",
    "output/LayerNorm": "output.LayerNorm",
}
_FIXED = {
    "bert/embeddings/word_embeddings": "embeddings.word_embeddings.weight",
    "bert/embeddings/position_embeddings": "embeddings.position_embeddings.weight",
    "bert/embeddings/token_type_embeddings": "embeddings.token_type_embeddings.weight",
    "bert/embeddings/LayerNorm/gamma": "embeddings.LayerNorm.weight",
    "bert/embeddings/LayerNorm/beta": "embeddings.LayerNorm.bias",
    "bert/pooler/dense/kernel": "pooler.dense.weight",
    "bert/pooler/dense/bias": "pooler.dense.bias",
}
_HEADS = {
    "cls/predictions/transform/dense/kernel": "cls.predictions.transform.dense.weight",
    "cls/predictions/transform/dense/bias": "cls.predictions.transform.dense.bias",
    "cls/predictions/transform/LayerNorm/gamma": "cls.predictions.transform.LayerNorm.weight",
    "cls/predictions/transform/LayerNorm/beta": "cls.predictions.transform.LayerNorm.bias",
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    "output_weights": "classifier.weight",
    "output_bias": "classifier.bias",
    "cls/squad/output_weights": "qa_outputs.weight",
    "cls/squad/output_bias": "qa_outputs.bias",
}


def hf_key(google_name: str, prefix: str = "bert.") -> str:
    """HF key of a Google variable name (encoder keys get `prefix`)."""
    if google_name in _HEADS:
        return _HEADS[google_name]
    if google_name in _FIXED:
        return prefix + _FIXED[google_name]
    m = re.fullmatch(r"bert/encoder/layer_(\d+)/(.+)/(kernel|bias|gamma|beta)", google_name)
    assert m, google_name
    leaf = {"kernel": "weight", "gamma": "weight", "bias": "bias", "beta": "bias"}[m.group(3)]
    return f"{prefix}encoder.layer.{m.group(1)}.{_LAYER_PARTS[m.group(2)]}.{leaf}"


def to_hf_tensors(arrays: Mapping[str, np.ndarray], prefix: str = "bert.") -> dict:
    """Google-named arrays -> HF keys; Linear kernels transposed to PyTorch's [out, in]."""
    out = {}
    for name, value in arrays.items():
        value = np.asarray(value, np.float32)
        out[hf_key(name, prefix)] = np.ascontiguousarray(
            value.T if name.endswith("/kernel") else value)
    return out


def hf_config(google_config: Mapping, architecture: str, **overrides) -> dict:
    """A transformers BertConfig dict with the fixture's sizes (HF 'gelu' = erf GELU)."""
    config = {k: google_config[k] for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "max_position_embeddings", "type_vocab_size", "initializer_range")}
    config.update(architectures=[architecture], model_type="bert", hidden_act="gelu",
                  layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute")
    config.update(overrides)
    return config


def vocab_tokens(vocab_size: int) -> list[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], some words, then filler up to vocab_size."""
    words = ["the", "capital", "of", "france", "is", "paris", "a", "cat", "sat", "on", "mat",
             "dog", "runs", "fast", "good", "bad", "movie", "##s", "##ing", ".", ",", "!", "?"]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    tokens += [f"w{i}" for i in range(vocab_size - len(tokens))]
    return tokens[:vocab_size]


def write_hf_directory(directory: str, config: Mapping, tensors: Mapping[str, np.ndarray],
                       do_lower_case: bool | None = True, **tokenizer_overrides) -> str:
    """Writes config.json, model.safetensors, vocab.txt and tokenizer_config.json."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(config), f)
    save_file(dict(tensors), os.path.join(directory, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.writelines(t + "\n" for t in vocab_tokens(int(config["vocab_size"])))
    if do_lower_case is not None:
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": do_lower_case, "tokenizer_class": "BertTokenizer",
                       **tokenizer_overrides}, f)
    return directory


def write_sentence_transformer(directory: str, google_config: Mapping, arrays,
                               pooling=("mean",), normalize=True, extra_modules=(),
                               max_seq_length: int = 9) -> str:
    """A sentence-transformers directory: the encoder (no pooler) as a HF BertModel at the
    root, modules.json, 1_Pooling/config.json, optional 2_Normalize, sentence_bert_config.json.
    `google_config` should say hidden_act "gelu_exact" (the HF config says "gelu")."""
    tensors = to_hf_tensors(
        {k: v for k, v in arrays.items() if not k.startswith("bert/pooler")}, prefix="")
    write_hf_directory(directory, hf_config(google_config, "BertModel"), tensors)
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    modules += list(extra_modules)
    os.makedirs(os.path.join(directory, "1_Pooling"), exist_ok=True)
    with open(os.path.join(directory, "modules.json"), "w") as f:
        json.dump(modules, f)
    keys = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
            "mean": "pooling_mode_mean_tokens", "weightedmean": "pooling_mode_weightedmean_tokens"}
    with open(os.path.join(directory, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": google_config["hidden_size"],
                   **{key: mode in pooling for mode, key in keys.items()}}, f)
    with open(os.path.join(directory, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": max_seq_length, "do_lower_case": False}, f)
    return directory


def transformers_or_none():
    """The `transformers` module when it and torch are installed (the `bench` extra), else None."""
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        return None
    return transformers
