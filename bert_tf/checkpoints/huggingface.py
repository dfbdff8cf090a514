"""Read and write Hugging Face BERT directories (config.json + model.safetensors + vocab.txt).

Loading maps every tensor onto our variables through `hf_names` (derived from the Google name
table), with the same strict report as the Google loader (`LoadReport`). Only safetensors are
read: `pytorch_model.bin` / `*.pt` are Python pickles that can run code when loaded.

Example:
    >>> from bert_tf import BertPretrainer
    >>> from bert_tf.checkpoints.huggingface import build_from_hf, save_hf
    >>> model = build_from_hf(BertPretrainer, "bert-base-uncased/")  # doctest: +SKIP
    >>> save_hf(model, "/tmp/mine", vocab_file="bert-base-uncased/vocab.txt")  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
from typing import Any, Iterable

import numpy as np

from bert_tf.checkpoints.google import CheckpointError, CheckpointMismatchError, LoadReport
from bert_tf.checkpoints.hf_names import (TIED_DECODER_BIAS, TIED_DECODER_WEIGHT, config_from_hf,
                                          config_to_hf, hf_group, hf_name, labels_from_hf)
from bert_tf.checkpoints.names import ENCODER, google_name_table
from bert_tf.config import BertConfig, ConfigError
from bert_tf.text.vocab import load_vocab

logger = logging.getLogger("bert_tf")

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
SPECIAL_TOKENS_NAME = "special_tokens_map.json"
VOCAB_NAME = "vocab.txt"
PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "tf_model.h5")
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}
POOLER = "bert/pooler/dense/"
# Buffers, not weights, that older transformers versions saved.
_BUFFER_SUFFIXES = ("position_ids", "token_type_ids")


@dataclasses.dataclass
class HfDirectory:
    """What a HF BERT directory holds, read and checked (weights are read on load)."""

    path: str
    raw_config: dict
    config: BertConfig
    labels: list[str] | None
    do_lower_case: bool
    vocab_file: str

    @property
    def architecture(self) -> str:
        return (self.raw_config.get("architectures") or ["BertModel"])[0]


def is_hf_directory(path: str | os.PathLike) -> bool:
    """True for a directory with a HF config.json (model_type or architectures present)."""
    config_path = os.path.join(os.fspath(path), CONFIG_NAME)
    if not os.path.isfile(config_path):
        return False
    try:
        with open(config_path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and ("model_type" in values or "architectures" in values)


def read_json_object(path: str, what: str) -> dict:
    """The JSON object in `path`; CheckpointError naming `what` and the file otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {what} {path}: {e}") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def read_do_lower_case(directory: str) -> bool:
    """Casing from tokenizer_config.json (HF's BertTokenizer default, True, when absent).
    Settings Google's tokenizer cannot reproduce raise ConfigError naming the field."""
    path = os.path.join(directory, TOKENIZER_CONFIG_NAME)
    if not os.path.isfile(path):
        logger.warning("%s has no %s; assuming do_lower_case=True (HF BertTokenizer's default)",
                       directory, TOKENIZER_CONFIG_NAME)
        return True
    values = read_json_object(path, TOKENIZER_CONFIG_NAME)
    lower = values.get("do_lower_case", True)
    if not isinstance(lower, bool):
        raise ConfigError(f"{path}: field 'do_lower_case' must be true or false, got {lower!r}")
    strip_accents = values.get("strip_accents")
    if strip_accents is not None and strip_accents != lower:
        raise ConfigError(f"{path}: field 'strip_accents' is {strip_accents} with do_lower_case "
                          f"{lower}; Google's tokenizer strips accents exactly when lowercasing")
    if values.get("tokenize_chinese_chars", True) is not True:
        raise ConfigError(f"{path}: field 'tokenize_chinese_chars' must be true (Google's "
                          f"tokenizer always splits CJK characters)")
    return lower


def read_hf_directory(path: str | os.PathLike) -> HfDirectory:
    """Reads config.json, tokenizer_config.json and checks vocab.txt of a HF BERT directory."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise CheckpointError(f"not a directory: {path} (expected a Hugging Face model directory "
                              f"with {CONFIG_NAME} and {WEIGHTS_NAME})")
    config_path = os.path.join(path, CONFIG_NAME)
    raw = read_json_object(config_path, f"Hugging Face {CONFIG_NAME}")
    config = config_from_hf(raw, source=config_path)
    vocab_file = os.path.join(path, VOCAB_NAME)
    if not os.path.isfile(vocab_file):
        raise CheckpointError(f"{path} has no {VOCAB_NAME}; bert_tf's in-graph tokenizer needs "
                              f"the WordPiece vocab.txt (tokenizer.json alone is not read)")
    config.check_vocab_fits(len(load_vocab(vocab_file)), vocab_file)
    return HfDirectory(path, raw, config, labels_from_hf(raw, config_path),
                       read_do_lower_case(path), vocab_file)


# ----------------------------------------------------------------------------- weights
def _refuse_pickles(path: str) -> None:
    found = [n for n in PICKLE_NAMES if os.path.exists(os.path.join(path, n))]
    raise CheckpointError(
        f"{path} has no {WEIGHTS_NAME}" + (f" but {found}" if found else "") + ". bert_tf does "
        f"not load pickled weights (pytorch_model.bin / .pt files can run code when loaded). "
        f"Convert them once in a trusted environment: `python -c \"from transformers import "
        f"AutoModel as M; M.from_pretrained('{path}').save_pretrained('{path}', "
        f"safe_serialization=True)\"` (or use the Hub's safetensors conversion)")


def read_hf_weights(path: str) -> dict[str, np.ndarray]:
    """All tensors of `model.safetensors` (or the shards its index names), as NumPy arrays."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    single, index = os.path.join(path, WEIGHTS_NAME), os.path.join(path, WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        shards = read_json_object(index, "safetensors index").get("weight_map", {})
        files = [os.path.join(path, f) for f in sorted(set(shards.values()))]
    else:
        _refuse_pickles(path)
    tensors: dict[str, np.ndarray] = {}
    for file in files:
        try:
            tensors.update(load_file(file))
        except (OSError, SafetensorError) as e:
            raise CheckpointError(f"cannot read safetensors file {file}: {e}") from None
        except TypeError as e:  # e.g. bfloat16, which NumPy has no dtype for
            raise CheckpointError(f"cannot read {file} with NumPy ({e}); save the model in "
                                  f"float32 or float16") from None
    return tensors


def _untie_decoder(tensors: dict[str, np.ndarray], word_key: str, bias_key: str) -> None:
    """Drops HF's copies of the tied decoder, after checking they are copies."""
    decoder = tensors.pop(TIED_DECODER_WEIGHT, None)
    if decoder is not None and word_key in tensors and not np.array_equal(decoder,
                                                                          tensors[word_key]):
        raise CheckpointError(f"{TIED_DECODER_WEIGHT} differs from {word_key}: an untied masked-LM "
                              f"decoder, which BERT (and bert_tf) ties to the word embeddings")
    decoder_bias = tensors.pop(TIED_DECODER_BIAS, None)
    if decoder_bias is not None:
        if bias_key not in tensors:
            tensors[bias_key] = decoder_bias
        elif not np.array_equal(decoder_bias, tensors[bias_key]):
            raise CheckpointError(f"{TIED_DECODER_BIAS} differs from {bias_key}")


def _normalise_keys(tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Old LayerNorm names (gamma/beta) → weight/bias; buffers dropped (and counted)."""
    out, buffers = {}, 0
    for key, value in tensors.items():
        if key.endswith(_BUFFER_SUFFIXES):
            buffers += 1
            continue
        if ".LayerNorm." in key:
            key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
                "LayerNorm.beta", "LayerNorm.bias")
        out[key] = value
    return out, buffers


def _plan(tensors: dict[str, np.ndarray], table: dict, path: str,
          optional_groups: Iterable[str]) -> LoadReport:
    """The Google loader's report over HF names: loaded, missing (optional groups and the
    pooler: newly_initialized), unexpected (encoder/heads the model has), unused (other heads)."""
    report = LoadReport(checkpoint=path)
    optional = set(optional_groups)
    model_groups = {entry.group for entry, _ in table.values()}
    for key in sorted(tensors):
        if key in table:
            entry, transpose = table[key]
            expected = entry.google_shape[::-1] if transpose else entry.google_shape
            if tuple(tensors[key].shape) != expected:
                report.mismatched.append((key, tuple(tensors[key].shape), expected))
            else:
                report.loaded.append(key)
        elif hf_group(key) in model_groups or hf_group(key) == ENCODER:
            report.unexpected.append(key)
        else:
            report.unused.append(key)
    for key, (entry, _) in table.items():
        if key not in tensors:
            pooler = entry.name.startswith(POOLER)
            target = report.newly_initialized if entry.group in optional or pooler else \
                report.missing
            target.append(key)
    return report


def load_hf_weights(model, path: str | os.PathLike, strict: bool = True,
                    optional_groups: Iterable[str] = ()) -> LoadReport:
    """Loads a HF BERT directory's safetensors into a BertEncoder / BertPretrainer /
    BertClassifier / BertTokenClassifier / BertSpanQA (any model `google_name_table` knows).

    Keys may carry HF's `bert.` prefix (task models) or not (BertModel). HF heads the model lacks
    are `unused`; a checkpoint without pooler weights (e.g. BertForMaskedLM) leaves the pooler
    newly initialised and says so. With `strict=True` any missing, unexpected or mismatched
    tensor raises one CheckpointMismatchError listing all of them. Returns a LoadReport (names
    are HF keys).
    """
    path = os.fspath(path)
    tensors, buffers = _normalise_keys(read_hf_weights(path))
    bare = not any(k.startswith("bert.") for k in tensors)
    entries = google_name_table(model)
    table = {}
    for entry in entries:
        key, transpose = hf_name(entry.name, bare_encoder=bare)
        table[key] = (entry, transpose)
    word_key = hf_name("bert/embeddings/word_embeddings", bare_encoder=bare)[0]
    _untie_decoder(tensors, word_key, hf_name("cls/predictions/output_bias")[0])
    report = _plan(tensors, table, path, optional_groups)
    report.skipped_training_state = buffers
    if not report.ok:
        message = f"Hugging Face checkpoint {path} does not match the model:\n{report.describe()}"
        if strict:
            raise CheckpointMismatchError(message, report)
        logger.warning("%s\nstrict=False: loading the %d matching tensors.", message,
                       len(report.loaded))
    for key in report.loaded:
        entry, transpose = table[key]
        value = tensors[key].T if transpose else tensors[key]
        entry.variable.assign(np.asarray(value, dtype=np.float32).reshape(entry.variable.shape)
                              .astype(entry.variable.dtype))
    if report.newly_initialized:
        logger.warning("%d variables not in %s keep their initial values: %s",
                       len(report.newly_initialized), path, ", ".join(report.newly_initialized))
    return report


def build_from_hf(model_cls, path: str | os.PathLike, strict: bool = True,
                  optional_groups: Iterable[str] = (), **model_kwargs):
    """Creates `model_cls(config, **model_kwargs)` from a HF directory's config.json and loads
    its weights. A classifier's `num_classes` defaults to config.json's `id2label` size."""
    directory = read_hf_directory(path)
    for arg in ("num_classes", "num_labels"):
        if directory.labels and arg in _init_args(model_cls):
            model_kwargs.setdefault(arg, len(directory.labels))
    model = model_cls(directory.config, **model_kwargs)
    load_hf_weights(model, directory.path, strict=strict, optional_groups=optional_groups)
    return model


def _init_args(model_cls) -> tuple[str, ...]:
    return tuple(inspect.signature(model_cls.__init__).parameters)


# ----------------------------------------------------------------------------- saving
def _architecture(model) -> tuple[str, bool]:
    """(HF architecture, bare encoder keys?) for one of our models."""
    has = lambda attr: getattr(model, attr, None) is not None  # noqa: E731
    if has("masked_lm") and has("next_sentence"):
        return "BertForPreTraining", False
    if has("masked_lm"):
        return "BertForMaskedLM", False
    if has("span_head"):  # BertSpanQA: HF's qa_outputs
        return "BertForQuestionAnswering", False
    if has("classifier"):
        token_level = hasattr(model, "num_labels")  # BertTokenClassifier: a label per token
        return ("BertForTokenClassification" if token_level
                else "BertForSequenceClassification"), False
    if has("encoder"):
        raise CheckpointError(f"no Hugging Face architecture for {type(model).__name__}")
    return "BertModel", True


def _write_atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: str, values: dict) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(values, f, indent=2, sort_keys=True)
            f.write("\n")
    _write_atomic(path, write)


def hf_tensors(model) -> tuple[dict[str, np.ndarray], str]:
    """(HF key → float32 array in HF's orientation, architecture) for one of our models."""
    architecture, bare = _architecture(model)
    tensors = {}
    for entry in google_name_table(model):
        key, transpose = hf_name(entry.name, bare_encoder=bare)
        value = np.asarray(entry.variable.numpy(), dtype=np.float32).reshape(entry.google_shape)
        tensors[key] = np.ascontiguousarray(value.T if transpose else value)
    return tensors, architecture


def save_hf(model, path: str | os.PathLike, vocab_file: str | os.PathLike,
            do_lower_case: bool = True, labels: list[str] | None = None) -> str:
    """Writes `model` as a HF BERT directory that `transformers` loads with from_pretrained:
    config.json, model.safetensors (tied decoder left to transformers' tying), vocab.txt,
    tokenizer_config.json, special_tokens_map.json. Returns the directory."""
    from safetensors.numpy import save_file

    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    config: BertConfig = model.config
    tokens = load_vocab(vocab_file).tokens
    config.check_vocab_fits(len(tokens), os.fspath(vocab_file))
    tensors, architecture = hf_tensors(model)
    num_classes = getattr(model, "num_classes", None) or getattr(model, "num_labels", None)
    if num_classes and labels is None:
        labels = [f"LABEL_{i}" for i in range(num_classes)]
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        raise ConfigError(f"{len(labels)} labels given for a classifier with {num_classes} "
                          f"classes")
    problem = "regression" if num_classes == 1 else None
    _write_atomic(os.path.join(path, WEIGHTS_NAME),
                  lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    _write_json(os.path.join(path, CONFIG_NAME),
                config_to_hf(config, architecture, labels, problem))
    _write_atomic(os.path.join(path, VOCAB_NAME), lambda tmp: _write_lines(tmp, tokens))
    _write_json(os.path.join(path, TOKENIZER_CONFIG_NAME), {
        "tokenizer_class": "BertTokenizer", "do_lower_case": do_lower_case,
        "strip_accents": None, "tokenize_chinese_chars": True,
        "model_max_length": config.max_position_embeddings,
        "clean_up_tokenization_spaces": False, **SPECIAL_TOKENS})
    _write_json(os.path.join(path, SPECIAL_TOKENS_NAME), dict(SPECIAL_TOKENS))
    return path


def _write_lines(path: str, lines: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines)
