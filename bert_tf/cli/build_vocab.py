"""Learn a WordPiece vocab.txt from raw text, for pretraining BERT from scratch.

    python -m bert_tf.cli.build_vocab --input_file=corpus.txt --vocab_size=8000 \
        --do_lower_case=true --output_file=vocab.txt

The result is the largest vocab tf-text's learner gives within --vocab_size tokens (special
tokens first); see `bert_tf.text.build_vocab`.
"""
from absl import flags, logging

from bert_tf.cli import common as cli

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Text files (comma-separated globs), one sentence "
                    "or paragraph per line.")
flags.DEFINE_string("output_file", None, "Where to write vocab.txt.")
flags.DEFINE_integer("vocab_size", 30522, "Largest size of the vocab (special tokens included).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased model).")
flags.DEFINE_integer("min_frequency", 2, "Lowest word-piece frequency the learner considers.")
flags.mark_flags_as_required(["input_file", "output_file"])


def main(argv) -> None:
    del argv
    from bert_tf.progress import heartbeat
    from bert_tf.text.build_vocab import build_vocab_file

    with heartbeat("build_vocab: learning the WordPiece vocab"):
        vocab = build_vocab_file(FLAGS.input_file, FLAGS.output_file, FLAGS.vocab_size,
                                 FLAGS.do_lower_case, FLAGS.min_frequency)
    logging.info("wrote %d tokens to %s", len(vocab), FLAGS.output_file)
    if len(vocab) < FLAGS.vocab_size:
        logging.warning("the corpus gives only %d tokens from pieces seen at least "
                        "--min_frequency=%d times (fewer than --vocab_size=%d); a lower "
                        "--min_frequency or more text gives more", len(vocab),
                        FLAGS.min_frequency, FLAGS.vocab_size)


if __name__ == "__main__":
    cli.run(main)
