"""Training: BERT's optimisers and learning-rate schedule (Google's optimization.py)."""
from bert_tf.training.optimization import (DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY, LAMB,
                                           OPTIMIZER_TYPES, AdamWeightDecay,
                                           WarmupPolynomialDecay, create_optimizer,
                                           variable_path)

__all__ = ["AdamWeightDecay", "DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY", "LAMB", "OPTIMIZER_TYPES",
           "WarmupPolynomialDecay", "create_optimizer", "variable_path"]
