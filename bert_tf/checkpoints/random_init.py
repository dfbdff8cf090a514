"""Write a randomly initialised BERT (encoder + pretraining heads) as a Google TF1 checkpoint.

The starting point for pretraining from scratch, and the demo's model:

    python -m bert_tf.cli.random_init --bert_config_file=configs/bert_tiny.json \
        --vocab_file=configs/demo/vocab.txt --output_dir=/tmp/bert_tiny_random

writes `bert_model.ckpt.*`, `bert_config.json` (vocab_size taken from the vocab file) and a copy
of `vocab.txt` into `--output_dir`, the layout of Google's released checkpoints.
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from bert_tf.checkpoints.google import save_google_checkpoint
from bert_tf.config import BertConfig
from bert_tf.models.pretrainer import BertPretrainer
from bert_tf.text.vocab import load_vocab


def write_random_checkpoint(config: BertConfig, vocab_file: str, output_dir: str,
                            seed: int = 12345) -> str:
    """Initialises BertPretrainer(config) with BERT's initialiser and saves it in Google's layout;
    `config.vocab_size` is set to the vocab's size. Returns the checkpoint prefix."""
    vocab = load_vocab(vocab_file)
    config = config.with_vocab_size(len(vocab))
    keras.utils.set_random_seed(seed)
    prefix = save_google_checkpoint(BertPretrainer(config), os.path.join(output_dir,
                                                                          "bert_model.ckpt"))
    tf.io.gfile.copy(vocab_file, os.path.join(output_dir, "vocab.txt"), overwrite=True)
    return prefix
