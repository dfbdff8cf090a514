"""bench/training_heads.py: bert_tf and its Hugging Face peer train the same task in the
fine-tuning benchmarks — with the same weights and batch (dropout off), both losses are equal."""
import os
import sys

import numpy as np
import pytest

import hf_ckpt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

import training_heads  # noqa: E402

transformers = hf_ckpt.transformers_or_none()
CONFIG = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
          "attention_probs_dropout_prob": 0.0, "max_position_embeddings": 64,
          "type_vocab_size": 2, "initializer_range": 0.2}


@pytest.mark.skipif(transformers is None, reason="needs torch and transformers (the bench extra)")
@pytest.mark.parametrize("head", ["classifier", "token_classifier", "span_qa"])
def test_bert_tf_and_hugging_face_losses_agree(head):
    import keras
    import tensorflow as tf
    import torch

    from bert_tf import models
    from bert_tf.checkpoints import google_name_table
    from bert_tf.config import BertConfig

    spec = training_heads.HEADS[head]
    keras.utils.set_random_seed(1)
    model = getattr(models, spec.ours)(BertConfig.from_dict(CONFIG), **spec.ours_kwargs)
    arrays = {e.name: np.asarray(e.variable.numpy()).reshape(e.google_shape)
              for e in google_name_table(model)}
    batch = training_heads.random_batch(CONFIG, 3, 16, 0)
    ours = float(training_heads.bert_tf_loss(
        head, model, {k: tf.constant(v) for k, v in batch.items()}))

    # Google's "gelu" is the tanh approximation: HF's "gelu_new" (as in bench/pretraining.py).
    config = transformers.BertConfig(**hf_ckpt.hf_config(CONFIG, spec.hf, hidden_act="gelu_new",
                                                         num_labels=spec.num_labels))
    peer = getattr(transformers, spec.hf)(config).eval()
    tensors = {k: torch.from_numpy(v) for k, v in hf_ckpt.to_hf_tensors(arrays).items()}
    missing, unexpected = peer.load_state_dict(tensors, strict=False)
    assert missing == [] and all(k.startswith("bert.pooler.") for k in unexpected)
    f = {k: torch.from_numpy(v) for k, v in batch.items()}
    with torch.no_grad():
        theirs = peer(input_ids=f["input_ids"].long(), attention_mask=f["input_mask"].long(),
                      token_type_ids=f["segment_ids"].long(),
                      **training_heads.hf_labels(head, f)).loss.item()
    assert ours > 0.1
    assert theirs == pytest.approx(ours, rel=1e-5)
