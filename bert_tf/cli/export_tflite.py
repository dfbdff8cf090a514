"""Convert a BERT classifier or encoder to TFLite, tokenization inside (for Android/iOS).

    # from a SavedModel written by export_saved_model.py (labels, casing, seq length inside):
    python export/export_tflite.py --saved_model_dir=serving/mrpc/1 \
      --output_file=mrpc.tflite --quantize=dynamic_int8
    # or straight from a checkpoint, with export_saved_model.py's flags:
    python export/export_tflite.py --task=classifier --init_checkpoint=output/mrpc \
      --max_seq_length=128 --do_lower_case=true --output_file=mrpc.tflite

Writes `<output_file>` and its JSON sidecar `<name>.json` (task, signatures, labels,
preprocessing, quantization, the tf-text custom ops the app must link) and prints the path, the
size and the custom ops. The model's `serving_default(text)` / `text_pair(text, text_b)` take
one string each (batch 1); see `bert_tf/serving/tflite.py`. Tasks: `classifier`, `encoder`
(`masked_lm` is refused: serve it as a SavedModel). `--quantize`: none (float32), float16 (half
the weight bytes) or dynamic_int8 (int8 weights, dynamic-range quantized matmuls).
"""
import os

from absl import flags, logging

from bert_tf.cli import common as cli
from bert_tf.errors import InputError
from bert_tf.serving.export import spec_from_checkpoint

FLAGS = flags.FLAGS

flags.DEFINE_string("saved_model_dir", None,
                    "A version directory written by export_saved_model.py (e.g. serving/mrpc/1); "
                    "replaces --init_checkpoint and the model flags.")
flags.DEFINE_enum("task", "classifier", ["classifier", "encoder", "masked_lm"],
                  "With --init_checkpoint: what to convert (masked_lm is not supported).")
cli.define_model_flags("Google-format checkpoint prefix or directory (run_classifier.py's "
                       "output_dir for a classifier).")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic_int8"],
                  "Weight storage: float32, float16, or int8 with dynamic-range quantization.")
flags.DEFINE_string("output_file", None, "The .tflite to write (its sidecar: <name>.json).")
flags.DEFINE_bool("overwrite", False, "Replace an existing output file and sidecar.")
flags.mark_flags_as_required(["output_file"])

_MODEL_FLAGS = ("init_checkpoint", "bert_config_file", "vocab_file", "labels")


def _load_from_saved_model():
    from bert_tf.serving.export import load_exported, read_export_metadata
    from bert_tf.serving.tflite import check_task

    given = [f"--{name}" for name in _MODEL_FLAGS if FLAGS[name].present]
    given += [f"--{name}" for name in ("task", "do_lower_case", "max_seq_length")
              if FLAGS[name].present]
    if given:
        raise InputError(f"--saved_model_dir takes the model, labels and preprocessing from the "
                         f"export: drop {', '.join(given)}")
    if not os.path.isdir(FLAGS.saved_model_dir):
        raise InputError(f"--saved_model_dir {FLAGS.saved_model_dir} does not exist or is not a "
                         "directory")
    check_task(read_export_metadata(FLAGS.saved_model_dir)["task"])  # before the slow load
    return load_exported(FLAGS.saved_model_dir)


def _load_from_checkpoint():
    from bert_tf.serving.export import load_model

    if not FLAGS.init_checkpoint:
        raise InputError("give --saved_model_dir, or --init_checkpoint (with --task and the "
                         "model flags)")
    spec = spec_from_checkpoint(FLAGS.task, FLAGS.init_checkpoint, FLAGS.bert_config_file,
                           FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.max_seq_length,
                           FLAGS.labels)
    return spec, load_model(spec, FLAGS.init_checkpoint)


def main(argv):
    del argv
    from bert_tf.serving.tflite import check_output_path, check_task, export_tflite

    if FLAGS.saved_model_dir and FLAGS.init_checkpoint:
        raise InputError("give either --saved_model_dir or --init_checkpoint, not both")
    if not FLAGS.saved_model_dir:
        check_task(FLAGS.task)
    check_output_path(FLAGS.output_file, FLAGS.overwrite)  # fail before the slow part
    spec, model = _load_from_saved_model() if FLAGS.saved_model_dir else _load_from_checkpoint()
    from bert_tf.progress import heartbeat

    with heartbeat("export_tflite: converting"):
        meta = export_tflite(spec, model, FLAGS.output_file, quantize=FLAGS.quantize,
                             overwrite=FLAGS.overwrite)
    logging.info("wrote %s and %s", meta["path"], meta["sidecar"])
    print(meta["path"])
    print(f"size: {meta['size_bytes']} bytes ({meta['size_bytes'] / 2 ** 20:.2f} MiB), "
          f"quantize: {meta['quantize']}, signatures: {', '.join(meta['signatures'])}")
    print(f"custom ops: {', '.join(meta['custom_ops']) or '(none)'}")



if __name__ == "__main__":
    cli.run(main)
