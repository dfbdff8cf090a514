"""BertTaskModel: the base of the task models (an encoder plus heads), as keras-hub's task
models take a backbone. The encoder, dtype, trainable and get_config plumbing is written here
once; a task model adds its heads and `call`."""
from __future__ import annotations

from typing import Any, Mapping

import keras

from bert_tf.config import BertConfig, as_config
from bert_tf.models.encoder import BertEncoder


class BertTaskModel(keras.Model):
    """A BertEncoder plus task heads.

    Args:
      encoder: a BertEncoder to build on (its weights are shared, e.g. a pretrained one), or a
        BertConfig / dict to build a new encoder from.
      dtype: the dtype policy of the heads (default: the given encoder's, else float32) and of a
        new encoder.
      trainable: False freezes every variable, the encoder's included.

    Subclasses build their heads in `__init__` after `super().__init__`, then call
    `self._finish(trainable)`, and add their own fields to `get_config` through
    `_task_config()`.
    """

    def __init__(self, encoder: BertEncoder | BertConfig | Mapping[str, Any], **kwargs):
        dtype = kwargs.pop("dtype", None)
        self._trainable_arg = kwargs.pop("trainable", True)
        if isinstance(encoder, BertEncoder):
            dtype = dtype or encoder.embeddings.dtype_policy
        else:
            encoder = BertEncoder(as_config(encoder), dtype=dtype)
        super().__init__(dtype=dtype, **kwargs)
        self.config = encoder.config
        self.encoder = encoder
        self.head_dtype = dtype

    def _finish(self) -> None:
        """Marks the model built (heads are built by the subclass) and applies `trainable`
        through the setter, which also freezes the sublayers (see BertEncoder)."""
        self.built = True
        self.trainable = self._trainable_arg

    def _task_config(self) -> dict:
        return {}

    def get_config(self) -> dict:
        # The encoder is saved as its config (with trainable and the layers' dtype policy):
        # from_config builds a new one.
        return {"encoder": self.config.to_dict(), "name": self.name, **self._task_config(),
                **self.encoder.trainable_and_dtype_config()}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if "config" in config:  # files written before models took an encoder
            config["encoder"] = config.pop("config")
        return cls(**config)
