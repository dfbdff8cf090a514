"""Hugging Face BERT names and config fields, derived from Google's (the one name table).

Every HF name is computed from the Google name of the same variable in
`bert_tf.checkpoints.names.google_name_table`, so any head added there maps to HF by the rule
below (plus `HEAD_NAMES` for heads whose HF name is not a rewrite of Google's). PyTorch's Linear
stores its weight [out, in] where Google (and our Dense layers) store [in, out]: exactly the
names ending in `/kernel` are transposed.

Example:
    >>> hf_name("bert/encoder/layer_3/attention/self/query/kernel")
    ('bert.encoder.layer.3.attention.self.query.weight', True)
    >>> hf_name("bert/pooler/dense/bias", bare_encoder=True)
    ('pooler.dense.bias', False)
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from bert_tf.checkpoints.names import CLASSIFIER, ENCODER, MASKED_LM, NEXT_SENTENCE
from bert_tf.config import DEFAULT_LAYER_NORM_EPS, BertConfig, ConfigError

# Heads whose HF name is not a rewrite of the Google name. `cls/squad/*` is Google run_squad's
# span head (HF `qa_outputs`, [2, H] in both); HF's token classifier is `classifier.*` too, on the
# sequence output instead of the pooled one (told apart by config.json `architectures`).
HEAD_NAMES = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    "output_weights": "classifier.weight",
    "output_bias": "classifier.bias",
    "cls/squad/output_weights": "qa_outputs.weight",
    "cls/squad/output_bias": "qa_outputs.bias",
}
SPAN_QA = "span_qa"
# HF key prefix → our group, for checkpoint keys the model has no variable for.
HF_GROUPS = (("cls.predictions.", MASKED_LM), ("cls.seq_relationship.", NEXT_SENTENCE),
             ("classifier.", CLASSIFIER), ("qa_outputs.", SPAN_QA))
# The tied decoder: HF may store copies of the word embeddings and the output bias under these.
TIED_DECODER_WEIGHT = "cls.predictions.decoder.weight"
TIED_DECODER_BIAS = "cls.predictions.decoder.bias"

_LEAF = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def hf_name(google_name: str, bare_encoder: bool = False) -> tuple[str, bool]:
    """(HF key, transpose?) for a Google variable name. Encoder variables get the `bert.`
    prefix of HF's task models, or none with `bare_encoder` (HF's BertModel)."""
    if google_name in HEAD_NAMES:
        return HEAD_NAMES[google_name], False
    encoder = google_name.startswith("bert/")
    path = google_name[len("bert/"):] if encoder else google_name
    path = re.sub(r"layer_(\d+)", r"layer.\1", path)
    *scopes, leaf = path.split("/")
    leaf = _LEAF.get(leaf, leaf + ".weight")  # embedding tables: word_embeddings → .weight
    name = ".".join(scopes + [leaf])
    if encoder and not bare_encoder:
        name = "bert." + name
    return name, google_name.endswith("/kernel")


def hf_group(key: str) -> str:
    """Our group of a HF checkpoint key (by prefix; everything else is the encoder)."""
    for prefix, group in HF_GROUPS:
        if key.startswith(prefix):
            return group
    return ENCODER


# ----------------------------------------------------------------------------- config.json
# HF `hidden_act` → ours. HF's "gelu" is the exact erf GELU; Google's "gelu" (ours) is tanh.
_ACT_FROM_HF = {"gelu": "gelu_exact", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu",
                "gelu_fast": "gelu", "relu": "relu", "tanh": "tanh"}
_ACT_TO_HF = {"gelu_exact": "gelu", "gelu": "gelu_new", "relu": "relu", "tanh": "tanh"}
_SAME_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                "max_position_embeddings", "type_vocab_size", "initializer_range")


def config_from_hf(values: Mapping[str, Any], source: str) -> BertConfig:
    """BertConfig from a HF BERT config.json dict; fields we cannot compute exactly raise
    ConfigError naming the field."""
    where = lambda field: f"{source}: field '{field}'"  # noqa: E731
    model_type = values.get("model_type", "bert")
    if model_type != "bert":
        raise ConfigError(f"{where('model_type')} is {model_type!r}; only BERT ('bert') models "
                          f"load into bert_tf")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{where('position_embedding_type')}: only 'absolute' position "
                          f"embeddings (BERT's) are supported, got "
                          f"{values['position_embedding_type']!r}")
    if values.get("is_decoder") or values.get("add_cross_attention"):
        raise ConfigError(f"{source}: a decoder BERT (is_decoder / add_cross_attention) is not "
                          f"supported; bert_tf models are bidirectional encoders")
    act = values.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise ConfigError(f"{where('hidden_act')} must be one of {sorted(_ACT_FROM_HF)} "
                          f"(HF's 'gelu' is the exact erf GELU), got {act!r}")
    if "vocab_size" not in values:
        raise ConfigError(f"{source}: required field 'vocab_size' is missing")
    known = {k: values[k] for k in _SAME_FIELDS if k in values}
    return BertConfig(**known, hidden_act=_ACT_FROM_HF[act],
                      layer_norm_eps=values.get("layer_norm_eps", DEFAULT_LAYER_NORM_EPS),
                      source=source)


def labels_from_hf(values: Mapping[str, Any], source: str) -> list[str] | None:
    """The class names of config.json `id2label`, in id order (None when absent)."""
    id2label = values.get("id2label")
    if not id2label:
        return None
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except (AttributeError, ValueError):
        raise ConfigError(f"{source}: field 'id2label' must map integer ids to names, got "
                          f"{id2label!r}") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise ConfigError(f"{source}: field 'id2label' must have the ids 0..{len(by_id) - 1}, "
                          f"got {sorted(by_id)}")
    return [by_id[i] for i in range(len(by_id))]


def config_to_hf(config: BertConfig, architecture: str, labels: list[str] | None = None,
                 problem_type: str | None = None) -> dict[str, Any]:
    """A HF config.json dict for `config` (transformers' BertConfig field names)."""
    out: dict[str, Any] = {"architectures": [architecture], "model_type": "bert"}
    out.update({k: getattr(config, k) for k in _SAME_FIELDS})
    out.update(hidden_act=_ACT_TO_HF[config.hidden_act], layer_norm_eps=config.layer_norm_eps,
               position_embedding_type="absolute", pad_token_id=0, use_cache=True,
               torch_dtype="float32")
    if labels is not None:
        out["id2label"] = {str(i): label for i, label in enumerate(labels)}
        out["label2id"] = {label: i for i, label in enumerate(labels)}
    if problem_type:
        out["problem_type"] = problem_type
    return out
