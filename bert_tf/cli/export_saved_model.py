"""Export a BERT checkpoint as a TF Serving SavedModel that takes raw strings.

    python export/export_saved_model.py --task=classifier --init_checkpoint=output/mrpc \
      --export_dir=serving --model_name=mrpc --max_seq_length=128 --do_lower_case=true

Writes `<export_dir>/<model_name>/<version>/` (saved_model.pb, variables/, assets/vocab.txt,
assets.extra/tf_serving_warmup_requests). Tasks: `classifier` (a run_classifier.py checkpoint:
serving_default(text) / text_pair(text, text_b) → probabilities, logits, label; regression →
score), `encoder` (TF Hub signatures: strings or input_word_ids/input_mask/input_type_ids →
pooled_output, sequence_output, encoder_outputs) and `masked_lm` (fill-mask: text with [MASK] →
top-k tokens and scores; needs the pretraining heads) and `token_classifier` (NER:
serving_default(text) → entity_text, entity_type, score, start/end code-point offsets,
num_entities; texts longer than one window are windowed with --doc_stride). `--bert_config_file`,
`--vocab_file` and, for a classifier or token_classifier, `--labels` default to the
bert_config.json / vocab.txt / labels.txt beside the checkpoint. Classifier texts longer than
--max_seq_length are truncated (Google's rule). A run_classifier.py --multi_label checkpoint is
exported multi-label (sigmoid probabilities, `label` = the labels above the threshold) as its
run_info.json records; --multi_label, --label_threshold and --label_separator override that.
"""
from absl import flags, logging

from bert_tf.cli import common as cli
from bert_tf.serving.export import DEFAULT_BUCKET_SIZE, SERVING_TASKS, spec_from_checkpoint

FLAGS = flags.FLAGS

flags.DEFINE_enum("task", "classifier", list(SERVING_TASKS),
                  "What to export (see the module docstring).")
cli.define_model_flags("Google-format checkpoint prefix or directory (Google's release, or the "
                       "output_dir of run_pretraining.py / run_classifier.py).")
flags.DEFINE_integer("top_k", 5, "masked_lm: tokens returned per [MASK].")
flags.DEFINE_bool("multi_label", None, "classifier: sigmoid probabilities and every label above "
                  "--label_threshold (default: what run_info.json beside the checkpoint says; "
                  "run_classifier.py --multi_label records it).")
flags.DEFINE_float("label_threshold", None, "--multi_label: a label is returned when its "
                   "probability is above this (default: the run's, else 0.5).")
flags.DEFINE_string("label_separator", None, "--multi_label: joins the returned labels "
                    "(default: the run's, else \",\").")
flags.DEFINE_integer("doc_stride", None, "token_classifier: window stride (in WordPiece tokens) "
                     "for texts longer than one window; default half a window. "
                     "question_answering: the same for contexts; default 128 (Google's).")
cli.define_question_answering_flags()
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_bfloat16", "bfloat16"],
                  "Dtype policy of the exported graph; bfloat16 also stores the weights in "
                  "bfloat16 (fastest on AMX CPUs and TPUs). Outputs stay float32.")
flags.DEFINE_integer("bucket_size", DEFAULT_BUCKET_SIZE,
                     "Pack each request batch to its longest text rounded up to a multiple of "
                     "this, capped at --max_seq_length (outputs unchanged, short texts faster); "
                     "0 packs every batch to --max_seq_length.")
flags.DEFINE_string("export_dir", None, "Model base directory for TF Serving.")
flags.DEFINE_string("model_name", None, "Model name (a directory under --export_dir).")
flags.DEFINE_integer("version", None, "Version number (default: newest existing + 1).")
flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.")
flags.mark_flags_as_required(["init_checkpoint", "export_dir", "model_name"])


def main(argv):
    del argv
    from bert_tf.serving.export import export_from_checkpoint, read_export_metadata

    spec = spec_from_checkpoint(FLAGS.task, FLAGS.init_checkpoint, FLAGS.bert_config_file,
                           FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.max_seq_length,
                           FLAGS.labels, top_k=FLAGS.top_k,
                           dtype_policy=FLAGS.mixed_precision, doc_stride=FLAGS.doc_stride,
                           bucket_size=FLAGS.bucket_size or None,
                           multi_label=FLAGS.multi_label, threshold=FLAGS.label_threshold,
                           label_separator=FLAGS.label_separator,
                           **cli.question_answering_kwargs(FLAGS))
    from bert_tf.progress import heartbeat

    with heartbeat("export: tracing and writing the SavedModel"):
        path = export_from_checkpoint(spec, FLAGS.init_checkpoint, FLAGS.export_dir,
                                      FLAGS.model_name, version=FLAGS.version,
                                      overwrite=FLAGS.overwrite)
    logging.info("exported %s to %s (needs the tf-text ops %s in the server)", FLAGS.task, path,
                 ", ".join(read_export_metadata(path)["custom_ops"]))
    print(path)


if __name__ == "__main__":
    cli.run(main)
