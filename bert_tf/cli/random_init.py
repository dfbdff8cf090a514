"""Write a randomly initialised BERT (encoder + pretraining heads) as a Google TF1 checkpoint.

    python -m bert_tf.cli.random_init --bert_config_file=configs/bert_tiny.json \
        --vocab_file=configs/demo/vocab.txt --output_dir=/tmp/bert_tiny_random

writes `bert_model.ckpt.*`, `bert_config.json` (vocab_size taken from the vocab file) and a copy
of `vocab.txt` into `--output_dir`, the layout of Google's released checkpoints.
"""
from absl import flags, logging

from bert_tf.cli import common as cli

FLAGS = flags.FLAGS
flags.DEFINE_string("bert_config_file", None, "bert_config.json giving the model size.")
flags.DEFINE_string("vocab_file", None, "vocab.txt; its size sets vocab_size.")
flags.DEFINE_string("output_dir", None, "Directory to write the checkpoint into.")
flags.DEFINE_integer("seed", 12345, "Random seed for the initial weights.")
flags.mark_flags_as_required(["bert_config_file", "vocab_file", "output_dir"])


def main(argv) -> None:
    del argv
    from bert_tf.checkpoints.random_init import write_random_checkpoint
    from bert_tf.config import BertConfig

    prefix = write_random_checkpoint(BertConfig.from_json_file(FLAGS.bert_config_file),
                                     FLAGS.vocab_file, FLAGS.output_dir, FLAGS.seed)
    logging.info("wrote a randomly initialised checkpoint to %s", prefix)


if __name__ == "__main__":
    cli.run(main)
