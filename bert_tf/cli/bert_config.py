"""Write a bert_config.json for a vocab: a base config with vocab_size set to the vocab's size.

    python -m bert_tf.cli.bert_config --base_config=configs/bert_tiny.json \
        --vocab_file=vocab.txt --output_file=bert_config.json

The step between learning a vocab (`bert_tf.cli.build_vocab`) and pretraining from scratch.
"""
from absl import flags

from bert_tf.cli import common as cli

FLAGS = flags.FLAGS
flags.DEFINE_string("base_config", None, "bert_config.json giving the model size.")
flags.DEFINE_string("vocab_file", None, "vocab.txt; its size sets vocab_size.")
flags.DEFINE_string("output_file", None, "Where to write the new bert_config.json.")
flags.mark_flags_as_required(["base_config", "vocab_file", "output_file"])


def main(argv) -> None:
    del argv
    from bert_tf.config import BertConfig
    from bert_tf.text.vocab import load_vocab

    config = BertConfig.from_json_file(FLAGS.base_config)
    size = len(load_vocab(FLAGS.vocab_file))
    config.with_vocab_size(size).to_json_file(FLAGS.output_file)
    print(f"wrote {FLAGS.output_file}: {FLAGS.base_config} with vocab_size={size}")


if __name__ == "__main__":
    cli.run(main)
