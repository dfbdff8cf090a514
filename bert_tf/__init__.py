"""bert_tf: BERT for TensorFlow 2 / Keras 3, compatible with Google's original checkpoints.

    >>> import bert_tf
    >>> from bert_tf.checkpoints import build_from_google_checkpoint
    >>> encoder = build_from_google_checkpoint(bert_tf.BertEncoder, "uncased_L-12_H-768_A-12")  # doctest: +SKIP

The top-level names are imported on first use (PEP 562), so a TensorFlow-free submodule such as
`bert_tf.serving.client` starts without loading TensorFlow and Keras (~3 s). When TensorFlow or
Keras is already imported, `import bert_tf` imports the models at once, so their Keras
serializables are registered and `keras.saving.load_model` finds them (`import bert_tf.models`
or any `bert_tf.<name>` does the same in any order).
"""
import importlib as _importlib
import os as _os
import sys as _sys

# Keras 3 must run on TensorFlow for this package (tf.distribute, SavedModel, tf-text ops).
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_EXPORTS = {"BertConfig": "bert_tf.config", "ConfigError": "bert_tf.config",
            "BertClassifier": "bert_tf.models", "BertEncoder": "bert_tf.models",
            "BertPretrainer": "bert_tf.models", "BertPreprocessor": "bert_tf.text",
            "BertTokenClassifier": "bert_tf.models", "BertTokenizer": "bert_tf.text",
            "SentenceEmbedder": "bert_tf.models", "Pretrained": "bert_tf.pretrained",
            "from_pretrained": "bert_tf.pretrained", "pipeline": "bert_tf.pipelines"}

__version__ = "0.1.0"
__all__ = ["BertClassifier", "BertConfig", "BertEncoder", "BertPreprocessor", "BertPretrainer",
           "BertTokenClassifier", "BertTokenizer", "ConfigError", "Pretrained", "SentenceEmbedder",
           "__version__", "from_pretrained", "pipeline"]


def _check_backend() -> None:
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(f"bert_tf needs Keras' TensorFlow backend, but KERAS_BACKEND is "
                          f"{keras.backend.backend()!r}; unset it or set "
                          "KERAS_BACKEND=tensorflow")


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")
    _check_backend()
    value = getattr(_importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if "keras" in _sys.modules or "tensorflow" in _sys.modules:
    for _name in _EXPORTS:
        __getattr__(_name)
