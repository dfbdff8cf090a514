"""The files that travel with a checkpoint: bert_config.json and vocab.txt beside it.

A script's `--bert_config_file` / `--vocab_file` win; otherwise the files beside
`--init_checkpoint` are used (Google's released directories and our output_dirs hold both).
"""
from __future__ import annotations

import os

from bert_tf.checkpoints.google import resolve_checkpoint
from bert_tf.config import BertConfig
from bert_tf.errors import InputError
from bert_tf.text.vocab import check_do_lower_case, load_vocab


def load_model_files(init_checkpoint: str | None, bert_config_file: str | None,
                     vocab_file: str | None, max_seq_length: int | None = None,
                     do_lower_case: bool | None = None):
    """(BertConfig, Vocab) for a script: `--bert_config_file`/`--vocab_file` if given, else the
    bert_config.json / vocab.txt beside `--init_checkpoint`. Errors name the flag; a
    `do_lower_case` that disagrees with the vocab or a known model name is warned about."""
    beside = os.path.dirname(resolve_checkpoint(init_checkpoint)) if init_checkpoint else None
    config_file = bert_config_file or (beside and os.path.join(beside, "bert_config.json"))
    vocab_file = vocab_file or (beside and os.path.join(beside, "vocab.txt"))
    if not config_file:
        raise InputError("--bert_config_file is required (or --init_checkpoint with a "
                         "bert_config.json beside it)")
    if not vocab_file:
        raise InputError("--vocab_file is required (or --init_checkpoint with a vocab.txt "
                         "beside it)")
    config = BertConfig.from_json_file(config_file)
    if max_seq_length is not None:
        config.check_max_seq_length(max_seq_length)
    vocab = load_vocab(vocab_file)
    config.check_vocab_fits(len(vocab), vocab_file)
    if do_lower_case is not None:
        check_do_lower_case(vocab, do_lower_case, init_checkpoint=init_checkpoint)
    return config, vocab
