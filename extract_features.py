"""Extract contextual token features with a BERT checkpoint (Google's extract_features.py flags).

    python extract_features.py --input_file=input.txt --output_file=features.jsonl \
      --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
      --vocab_file=uncased_L-12_H-768_A-12/vocab.txt \
      --bert_config_file=uncased_L-12_H-768_A-12/bert_config.json \
      --layers=-1,-2,-3,-4 --max_seq_length=128 --batch_size=8

Input lines are `text` or `text_a ||| text_b`; the output is Google's JSONL.
`--bert_config_file` and `--vocab_file` default to the files beside the checkpoint.
"""
import os

from absl import flags, logging

from bert_tf.cli import common as cli

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Text file: one `text` or `text_a ||| text_b` per line.")
flags.DEFINE_string("output_file", None, "Where to write the JSONL features.")
flags.DEFINE_string("layers", "-1,-2,-3,-4", "Comma-separated encoder layer indexes.")
flags.DEFINE_string("bert_config_file", None,
                    "bert_config.json (default: the one beside the checkpoint).")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length after WordPiece (truncate/pad).")
flags.DEFINE_string("init_checkpoint", None, "Google TF1 checkpoint prefix or its directory.")
flags.DEFINE_string("vocab_file", None, "vocab.txt (default: the one beside the checkpoint).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case input (True for uncased models).")
flags.DEFINE_integer("batch_size", 32, "Examples per forward pass.")
flags.mark_flags_as_required(["input_file", "output_file", "init_checkpoint"])


def main(argv):
    del argv
    from bert_tf import BertConfig, BertEncoder
    from bert_tf.checkpoints import build_from_google_checkpoint, resolve_checkpoint
    from bert_tf.features import extract_features_to_file
    from bert_tf.text import BertPreprocessor, check_do_lower_case, load_vocab

    prefix = resolve_checkpoint(FLAGS.init_checkpoint)
    config = BertConfig.from_json_file(FLAGS.bert_config_file) if FLAGS.bert_config_file else None
    vocab_file = FLAGS.vocab_file or os.path.join(os.path.dirname(prefix), "vocab.txt")
    vocab = load_vocab(vocab_file)
    check_do_lower_case(vocab, FLAGS.do_lower_case, init_checkpoint=FLAGS.init_checkpoint)
    encoder = build_from_google_checkpoint(BertEncoder, prefix, config=config)
    if len(vocab) > encoder.config.vocab_size:
        raise ValueError(f"--vocab_file {vocab_file} has {len(vocab)} tokens but the model's "
                         f"vocab_size is {encoder.config.vocab_size}")
    preprocessor = BertPreprocessor(vocab, do_lower_case=FLAGS.do_lower_case,
                                    seq_length=FLAGS.max_seq_length,
                                    max_position_embeddings=encoder.config.max_position_embeddings)
    count = extract_features_to_file(encoder, preprocessor, FLAGS.input_file, FLAGS.output_file,
                                     FLAGS.layers, batch_size=FLAGS.batch_size)
    logging.info("wrote features of %d examples to %s", count, FLAGS.output_file)


if __name__ == "__main__":
    cli.run(main)
