"""bert_tf: BERT for TensorFlow 2 / Keras 3, compatible with Google's original checkpoints.

    >>> import bert_tf
    >>> encoder = bert_tf.BertEncoder.from_google_checkpoint("uncased_L-12_H-768_A-12")  # doctest: +SKIP
"""
import os as _os

# Keras 3 must run on TensorFlow for this package (tf.distribute, SavedModel, tf-text ops).
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":
    raise ImportError(f"bert_tf needs Keras' TensorFlow backend, but KERAS_BACKEND is "
                      f"{_keras.backend.backend()!r}; unset it or set KERAS_BACKEND=tensorflow")

from bert_tf.config import BertConfig, ConfigError  # noqa: E402
from bert_tf.models import (BertClassifier, BertEncoder, BertPretrainer,  # noqa: E402
                            SentenceEmbedder)
from bert_tf.text import BertPreprocessor, BertTokenizer  # noqa: E402
from bert_tf.pretrained import Pretrained, from_pretrained  # noqa: E402
from bert_tf.pipelines import pipeline  # noqa: E402

__version__ = "0.1.0"
__all__ = ["BertClassifier", "BertConfig", "BertEncoder", "BertPreprocessor", "BertPretrainer",
           "BertTokenizer", "ConfigError", "Pretrained", "SentenceEmbedder", "__version__", "from_pretrained",
           "pipeline"]
