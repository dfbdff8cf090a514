"""Convert a BERT model between formats: Google TF1, Hugging Face, keras-hub, our .keras.

    python -m bert_tf.cli.convert --from=bert-base-uncased/ --to=out/google --to_format=google
    python -m bert_tf.cli.convert --from=uncased_L-12_H-768_A-12 --to=out/hf --to_format=hf

`--from` is anything `bert_tf.from_pretrained` reads (a Google checkpoint directory, a fine-tuned
output_dir, a Hugging Face directory, a keras-hub preset, a .keras file, an exported SavedModel).
Every weight must map (strict); the task defaults to what the source holds.
"""
from __future__ import annotations

from absl import flags

from bert_tf.cli.common import run

flags.DEFINE_string("from", None, "Source model directory (any format from_pretrained reads).")
flags.DEFINE_string("to", None, "Output directory (must not exist or be empty).")
flags.DEFINE_enum("to_format", None, ["google", "hf", "keras_hub", "keras"], "Output format.")
flags.DEFINE_enum("task", None, ["encoder", "masked_lm", "pretraining", "classifier",
                                   "token_classifier", "question_answering"],
                  "Model to convert (default: the one the source holds).")
flags.DEFINE_bool("do_lower_case", None, "Override the casing read from (or guessed for) the "
                  "source.")
flags.mark_flags_as_required(["from", "to", "to_format"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from bert_tf.pretrained import from_pretrained, save_pretrained

    loaded = from_pretrained(FLAGS["from"].value, task=FLAGS.task,
                             do_lower_case=FLAGS.do_lower_case)
    path = save_pretrained(loaded, FLAGS.to, FLAGS.to_format)
    print(f"wrote {loaded.task} model ({loaded.format} → {FLAGS.to_format}) to {path}")


if __name__ == "__main__":
    run(main)
