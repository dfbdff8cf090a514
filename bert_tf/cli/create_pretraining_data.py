"""Create BERT pretraining TFRecords from raw text (Google's create_pretraining_data.py flags).

    python create_pretraining_data.py --input_file='corpus/*.txt' \
      --output_file=data/part-0.tfrecord,data/part-1.tfrecord --vocab_file=vocab.txt \
      --do_lower_case=true --max_seq_length=128 --max_predictions_per_seq=20 \
      --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=10

Input: one sentence per line, a blank line between documents. The records train unchanged with
Google's run_pretraining.py and ours. Tokenization runs in the graph and instance creation on all
cores (--num_processes); --exact_rng reproduces Google's single random stream instead (one
process, slower). See bert_tf/data/pretraining_data.py for the algorithm. The output files appear
only once complete.
"""
from absl import flags, logging

from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None,
                    "Input raw text file (or comma-separated list of files / globs).")
flags.DEFINE_string("output_file", None,
                    "Output TFRecord file (or comma-separated list of files).")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text (uncased models).")
flags.DEFINE_bool("do_whole_word_mask", False,
                  "Whether to mask all of the word pieces of a word at once.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum number of masked LM predictions "
                     "per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10, "Number of times to duplicate the input data (with "
                     "different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of creating sequences which are shorter "
                   "than the maximum length.")
flags.DEFINE_integer("num_processes", None, "Worker processes (default: all available cores). "
                     "The output does not depend on it.")
flags.DEFINE_bool("exact_rng", False, "Draw every random number from one random.Random("
                  "random_seed) in Google's order (one process, slower): the same instances as "
                  "Google's script for the same seed and Python version.")
flags.DEFINE_bool("progress", True, "Print a progress line on stderr every few seconds.")
flags.mark_flags_as_required(["input_file", "output_file", "vocab_file"])


def main(argv):
    del argv
    from bert_tf.data.pretraining_data import REQUIRED_TOKENS, create_pretraining_data
    from bert_tf.text import check_do_lower_case, load_vocab

    if FLAGS.num_processes is not None and FLAGS.num_processes < 1:
        raise InputError(f"--num_processes must be at least 1, got {FLAGS.num_processes}")
    vocab = load_vocab(FLAGS.vocab_file, required_special_tokens=REQUIRED_TOKENS)
    vocab.check_unique()
    check_do_lower_case(vocab, FLAGS.do_lower_case)
    summary = create_pretraining_data(
        FLAGS.input_file, FLAGS.output_file, vocab, do_lower_case=FLAGS.do_lower_case,
        do_whole_word_mask=FLAGS.do_whole_word_mask, max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq, random_seed=FLAGS.random_seed,
        dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob, num_processes=FLAGS.num_processes,
        exact_rng=FLAGS.exact_rng, progress=FLAGS.progress)
    for path, count in zip(summary["output_files"], summary["records_per_file"]):
        logging.info("wrote %d records to %s", count, path)



if __name__ == "__main__":
    cli.run(main)
