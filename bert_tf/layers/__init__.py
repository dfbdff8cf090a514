"""Keras layers of BERT: embeddings, the post-LN Transformer block, and the output heads."""
from bert_tf.layers.activations import gelu, gelu_exact, get_activation
from bert_tf.layers.dropout import Dropout
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.heads import ClassificationHead, masked_lm_head
from bert_tf.layers.transformer import TransformerBlock

__all__ = ["BertEmbeddings", "ClassificationHead", "Dropout", "TransformerBlock", "gelu",
           "gelu_exact", "get_activation", "masked_lm_head"]
