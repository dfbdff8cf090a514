"""Keras models built from bert_tf.layers: the encoder, the pretrainer and task models."""
from bert_tf.models.base import BertTaskModel
from bert_tf.models.classifier import BertClassifier
from bert_tf.models.encoder import ENCODER_INPUTS, BertEncoder, encoder_inputs
from bert_tf.models.pretrainer import PRETRAINING_FEATURES, BertPretrainer, pretraining_losses
from bert_tf.models.sentence_embedder import SentenceEmbedder
from bert_tf.models.span_qa import SPAN_QA_OUTPUTS, BertSpanQA
from bert_tf.models.token_classifier import BertTokenClassifier, token_classification_loss

__all__ = ["BertClassifier", "BertEncoder", "BertPretrainer", "BertSpanQA", "BertTaskModel",
           "BertTokenClassifier", "ENCODER_INPUTS", "PRETRAINING_FEATURES", "SPAN_QA_OUTPUTS",
           "SentenceEmbedder", "encoder_inputs", "pretraining_losses",
           "token_classification_loss"]
