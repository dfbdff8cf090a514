"""BERT's weight initialiser."""
import keras


def bert_initializer(initializer_range: float = 0.02) -> keras.initializers.Initializer:
    """Truncated normal with stddev = initializer_range (cut at 2 stddev), as Google's BERT."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)
