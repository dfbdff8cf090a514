"""Debugging command: tokenize a text file with the in-graph tokenizer, one line per input line.

    python -m bert_tf.cli.tokenize --vocab_file=vocab.txt --do_lower_case=true \
        --input_file=in.txt --output_file=pieces.txt [--ids]

Each output line holds the line's WordPiece pieces (or ids with --ids) joined by single spaces,
without [CLS]/[SEP]; an empty or whitespace-only line gives an empty line.
"""
from absl import flags, logging

from bert_tf.cli import common as cli

FLAGS = flags.FLAGS
flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased model).")
flags.DEFINE_string("input_file", None, "Text file to tokenize, one text per line.")
flags.DEFINE_string("output_file", None, "Where to write one tokenized line per input line.")
flags.DEFINE_bool("ids", False, "Write vocab ids instead of wordpieces.")
flags.mark_flags_as_required(["vocab_file", "input_file", "output_file"])


def main(argv) -> None:
    del argv
    from bert_tf.text.tokenize import tokenize_file
    from bert_tf.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
    count = tokenize_file(tokenizer, FLAGS.input_file, FLAGS.output_file, ids=FLAGS.ids)
    logging.info("tokenized %d lines into %s", count, FLAGS.output_file)


if __name__ == "__main__":
    cli.run(main)
