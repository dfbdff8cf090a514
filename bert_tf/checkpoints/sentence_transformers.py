"""Read a sentence-transformers directory (BERT Transformer → Pooling → optional Normalize).

    modules.json                  the pipeline: [Transformer, Pooling, (Normalize)]
    sentence_bert_config.json     max_seq_length (and an extra do_lower_case)
    <transformer path>/           a Hugging Face BERT directory (usually the root itself)
    1_Pooling/config.json         pooling_mode_cls_token / _max_tokens / _mean_tokens / ...

Modules other than these (e.g. `Dense` projections) are refused by name rather than skipped, so
an embedding is never silently different from what sentence-transformers computes.
"""
from __future__ import annotations

import dataclasses
import json
import os

from bert_tf.checkpoints.google import CheckpointError
from bert_tf.checkpoints.huggingface import HfDirectory, load_hf_weights, read_hf_directory
from bert_tf.models.encoder import BertEncoder
from bert_tf.models.sentence_embedder import POOLING_MODES, SentenceEmbedder
from bert_tf.text.preprocessor import BertPreprocessor
from bert_tf.text.vocab import load_vocab

MODULES_NAME = "modules.json"
ST_CONFIG_NAME = "sentence_bert_config.json"
_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"
# Pooling config key → our mode; modes sentence-transformers has that we do not compute.
_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                 "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens"}
_UNSUPPORTED_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


@dataclasses.dataclass
class SentenceTransformerDirectory:
    """What a sentence-transformers directory specifies, read and checked."""

    path: str
    transformer: HfDirectory
    pooling_modes: tuple[str, ...]
    normalize: bool
    max_seq_length: int


def _json(path: str) -> dict | list:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"sentence-transformers file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def _modules(path: str) -> dict[str, str]:
    """Module kind (Transformer, Pooling, Normalize) → its sub-directory, in pipeline order."""
    modules_path = os.path.join(path, MODULES_NAME)
    entries = _json(modules_path)
    if not isinstance(entries, list):
        raise CheckpointError(f"{modules_path}: expected a list of modules")
    found = {}
    for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        if kind not in (_TRANSFORMER, _POOLING, _NORMALIZE):
            raise CheckpointError(f"{modules_path}: module {entry.get('type')!r} is not supported "
                                  f"(bert_tf computes Transformer → Pooling → Normalize only)")
        found[kind] = os.path.join(path, entry.get("path", ""))
    if list(found)[:2] != [_TRANSFORMER, _POOLING]:
        raise CheckpointError(f"{modules_path}: expected a Transformer then a Pooling module, "
                              f"got {list(found)}")
    return found


def _pooling_modes(pooling_dir: str) -> tuple[str, ...]:
    config_path = os.path.join(pooling_dir, "config.json")
    config = _json(config_path)
    bad = [k for k in _UNSUPPORTED_POOLING if config.get(k)]
    if bad:
        raise CheckpointError(f"{config_path}: {bad} pooling is not supported (supported: "
                              f"{', '.join(_POOLING_KEYS)})")
    modes = tuple(mode for key, mode in _POOLING_KEYS.items() if config.get(key))
    if not modes:
        raise CheckpointError(f"{config_path}: no pooling mode is set")
    return tuple(m for m in POOLING_MODES if m in modes)


def read_sentence_transformer(path: str | os.PathLike) -> SentenceTransformerDirectory:
    """Reads and checks modules.json, the pooling config, sentence_bert_config.json and the
    Transformer module's Hugging Face directory."""
    path = os.fspath(path)
    modules = _modules(path)
    transformer = read_hf_directory(modules[_TRANSFORMER])
    st_config_path = os.path.join(modules[_TRANSFORMER], ST_CONFIG_NAME)
    st_config = _json(st_config_path) if os.path.isfile(st_config_path) else {}
    if st_config.get("do_lower_case") and not transformer.do_lower_case:
        raise CheckpointError(f"{st_config_path}: do_lower_case=true over a cased tokenizer is "
                              f"not supported (bert_tf lower-cases inside the tokenizer)")
    max_seq_length = int(st_config.get("max_seq_length")
                         or transformer.config.max_position_embeddings)
    transformer.config.check_max_seq_length(max_seq_length, f"{st_config_path} max_seq_length")
    return SentenceTransformerDirectory(path, transformer, _pooling_modes(modules[_POOLING]),
                                        _NORMALIZE in modules, max_seq_length)


def build_sentence_embedder(directory: SentenceTransformerDirectory, strict: bool = True,
                            do_lower_case: bool | None = None,
                            tflite_compatible: bool = False) -> SentenceEmbedder:
    """The SentenceEmbedder (weights loaded, preprocessor set) a directory describes."""
    encoder = BertEncoder(directory.transformer.config)
    # A sentence-transformers BERT is saved without heads and often without the pooler, which
    # its embedding never reads (any pooler absence is reported as newly initialised).
    load_hf_weights(encoder, directory.transformer.path, strict=strict)
    lower = directory.transformer.do_lower_case if do_lower_case is None else do_lower_case
    preprocessor = BertPreprocessor(
        load_vocab(directory.transformer.vocab_file), do_lower_case=lower,
        seq_length=directory.max_seq_length, tflite_compatible=tflite_compatible,
        max_position_embeddings=directory.transformer.config.max_position_embeddings)
    return SentenceEmbedder(encoder, preprocessor, directory.pooling_modes, directory.normalize)
