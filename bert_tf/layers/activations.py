"""BERT's activations, by Google's `hidden_act` names, as serialisable Keras functions."""
from __future__ import annotations

from typing import Callable

import keras


@keras.saving.register_keras_serializable(package="bert_tf")
def gelu(x):
    """Google BERT's "gelu": the tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="bert_tf")
def gelu_exact(x):
    """The exact (erf) GELU, 0.5x(1 + erf(x/sqrt(2)))."""
    return keras.activations.gelu(x, approximate=False)


_ACTIVATIONS: dict[str, Callable] = {
    "gelu": gelu,
    "gelu_exact": gelu_exact,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
}


def get_activation(hidden_act: str) -> Callable:
    """Maps a bert_config.json `hidden_act` to a Keras activation (see BertConfig.validate)."""
    try:
        return _ACTIVATIONS[hidden_act]
    except KeyError:
        raise ValueError(f"hidden_act must be one of {sorted(_ACTIVATIONS)}, got {hidden_act!r}") from None
