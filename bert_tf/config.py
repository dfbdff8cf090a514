"""BertConfig: the fields of Google's ``bert_config.json``, validated.

Example:
    >>> from bert_tf import BertConfig
    >>> cfg = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2,
    ...                  num_attention_heads=2, intermediate_size=512)
    >>> cfg.head_size
    64
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any, Mapping

from bert_tf.errors import InputError
from bert_tf.io import atomic_output

# Google's `hidden_act` names. "gelu" is the tanh approximation, as in Google's modeling.py.
HIDDEN_ACTS = ("gelu", "gelu_exact", "relu", "tanh")
DEFAULT_LAYER_NORM_EPS = 1e-12

# Fields every released bert_config.json carries and that fix the weights' shapes or the
# function computed: a file without one of them is refused instead of silently taking Google's
# class defaults (12 heads, 3072, ...), which would build a different model. The dropout
# probabilities and initializer_range only affect training and keep their defaults.
REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                   "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size")

# Keys that appear in released configs but carry no meaning for the model (the Chinese
# release has "directionality" and "pooler_*"; HF-style exports add "model_type" etc.)
# are kept in `extra` and written back unchanged.


class ConfigError(InputError):
    """A bert_config.json (or a BertConfig argument) is missing, malformed or invalid."""


@dataclasses.dataclass
class BertConfig:
    """Hyper-parameters of a BERT model, with Google's defaults and field names.

    Fields mirror Google's ``modeling.BertConfig``. Unknown keys read from a JSON file are kept in
    ``extra`` (and written back), so released configs with extra keys load unchanged.
    """

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 16
    initializer_range: float = 0.02
    # Not in Google's configs (their LayerNorm eps is fixed at 1e-12); Hugging Face configs carry
    # it as `layer_norm_eps`. Written to JSON only when it differs from Google's value.
    layer_norm_eps: float = DEFAULT_LAYER_NORM_EPS
    extra: dict = dataclasses.field(default_factory=dict)
    source: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def _where(self, name: str) -> str:
        return f"{self.source}: field '{name}'" if self.source else f"BertConfig field '{name}'"

    def validate(self) -> None:
        """Raises ConfigError naming the field (and file) that is wrong."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{self._where(name)} must be an integer, got {value!r} "
                                  f"({type(value).__name__})")
            if value <= 0:
                raise ConfigError(f"{self._where(name)} must be positive, got {value}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{self._where(name)} must be a number, got {value!r}")
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{self._where(name)} must be in [0, 1), got {value}")
        value = self.initializer_range
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{self._where('initializer_range')} must be a positive number, "
                              f"got {value!r}")
        value = self.layer_norm_eps
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ConfigError(f"{self._where('layer_norm_eps')} must be a number in (0, 1), "
                              f"got {value!r}")
        if self.hidden_act not in HIDDEN_ACTS:
            raise ConfigError(f"{self._where('hidden_act')} must be one of {list(HIDDEN_ACTS)} "
                              f"(gelu = Google's tanh approximation), got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"{self._where('hidden_size')}: hidden_size ({self.hidden_size}) must be divisible "
                f"by num_attention_heads ({self.num_attention_heads})")

    @property
    def head_size(self) -> int:
        """Size of one attention head (hidden_size / num_attention_heads)."""
        return self.hidden_size // self.num_attention_heads

    # ------------------------------------------------------------------ (de)serialisation
    def check_max_seq_length(self, max_seq_length: int, name: str = "--max_seq_length") -> None:
        """Raises ConfigError when inputs of `max_seq_length` tokens do not fit the position
        embeddings. The one place this rule is checked; `name` is the flag or argument to blame."""
        check_seq_length_fits(max_seq_length, self.max_position_embeddings, name,
                              self._where("max_position_embeddings"))

    def check_vocab_fits(self, num_tokens: int, vocab_file: str | None = None) -> None:
        """Raises ConfigError when a vocabulary of `num_tokens` entries has ids beyond the
        embedding table (`vocab_size`). The one place this rule is checked."""
        if num_tokens > self.vocab_size:
            what = f"the vocab file {vocab_file}" if vocab_file else "the vocabulary"
            raise ConfigError(f"{what} has {num_tokens} tokens but the model's vocab_size is "
                              f"{self.vocab_size} ({self._where('vocab_size')})")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "source"))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str | None = None) -> "BertConfig":
        """Builds a config from a dict such as a parsed bert_config.json; unknown keys go to `extra`."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source or 'BertConfig.from_dict'}: expected a JSON object, got "
                              f"{type(values).__name__}")
        names = cls.field_names()
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: copy.deepcopy(v) for k, v in values.items() if k not in names and k != "extra"}
        extra.update(values.get("extra") or {})
        missing = [name for name in REQUIRED_FIELDS if name not in known]
        if missing:
            raise ConfigError(f"{source or 'BertConfig'}: required field(s) "
                              f"{', '.join(repr(m) for m in missing)} missing (every "
                              f"bert_config.json must give {', '.join(REQUIRED_FIELDS)})")
        return cls(**known, extra=extra, source=source)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BertConfig":
        """Reads Google's bert_config.json."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise ConfigError(f"bert_config.json not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read BERT config {path}: {e}") from None
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: "
                              f"{e.msg})") from None
        return cls.from_dict(values, source=path)

    def to_dict(self) -> dict[str, Any]:
        """Google's field names and values (plus any extra keys read from a file)."""
        out = {name: getattr(self, name) for name in self.field_names()}
        if out["layer_norm_eps"] == DEFAULT_LAYER_NORM_EPS:
            del out["layer_norm_eps"]  # keeps Google's bert_config.json byte for byte
        out.update(copy.deepcopy(self.extra))
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Writes the config as Google's bert_config.json (whole or not at all)."""
        with atomic_output(path) as f:
            f.write(self.to_json_string())

    def with_vocab_size(self, vocab_size: int) -> "BertConfig":
        """A copy with `vocab_size` replaced (for a model built on a new vocab.txt)."""
        return dataclasses.replace(self, vocab_size=vocab_size, source=None)


def check_seq_length_fits(max_seq_length: int, max_position_embeddings: int,
                          name: str = "--max_seq_length", where: str | None = None) -> None:
    """The rule behind `BertConfig.check_max_seq_length`, for callers that hold only the model's
    `max_position_embeddings` (a preprocessor layer). Raises ConfigError."""
    if max_seq_length > max_position_embeddings:
        raise ConfigError(f"{name}={max_seq_length} exceeds the model's max_position_embeddings "
                          f"{max_position_embeddings}" + (f" ({where})" if where else ""))


def as_config(config: "BertConfig | Mapping[str, Any]") -> BertConfig:
    """Accepts a BertConfig or a dict of its fields (as found in a Keras `get_config`)."""
    if isinstance(config, BertConfig):
        return config
    return BertConfig.from_dict(config)
