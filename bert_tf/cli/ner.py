"""run_ner.py: fine-tune BERT for named-entity recognition on CoNLL column files (flags in the
style of Google's run_classifier.py, shared with it), on one device, several GPUs, several
workers or a TPU.

    python run_ner.py --train_file=train.txt --eval_file=valid.txt --predict_file=test.txt \
      --init_checkpoint=cased_L-12_H-768_A-12/bert_model.ckpt --do_lower_case=False \
      --do_train --do_eval --do_predict --max_seq_length=128 --train_batch_size=32 \
      --learning_rate=5e-5 --num_train_epochs=3.0 --output_dir=out/ner

Or a known dataset's files in --data_dir: --task_name=conll2003 (train.txt, valid.txt, test.txt)
or --task_name=wnut17 (wnut17train.conll, emerging.dev.conll, emerging.test.annotated).

Files: one token per line with its tag in the last column, a blank line between sentences;
tag schemes IOB1/IOB2/IOBES are detected (--tag_scheme overrides). Labels come from the training
file (or --labels; or labels.txt beside a fine-tuned --init_checkpoint when not training).

Outputs in --output_dir: eval_results.txt (eval_f1, eval_precision, eval_recall, eval_f1_<TYPE>,
eval_accuracy, eval_loss, global_step, loss), eval_predictions.txt / test_predictions.txt
(CoNLL format for conlleval), bert_model.ckpt + bert_config.json + vocab.txt + labels.txt.
--export_dir also writes a TF Serving SavedModel that returns entities with character offsets
(docs/token_classification.md).
"""
import os

from absl import flags, logging

from bert_tf.checkpoints.model_files import load_model_files
from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
# The file names of the known datasets: (train, dev, test).
DATASET_FILES = {
    "conll2003": ("train.txt", "valid.txt", "test.txt"),
    "wnut17": ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"),
}
flags.DEFINE_string("train_file", None, "CoNLL file to train on (--do_train).")
flags.DEFINE_string("eval_file", None, "CoNLL file with gold tags to evaluate on (--do_eval).")
flags.DEFINE_string("predict_file", None, "CoNLL file (tokens; tags optional) to predict "
                    "(--do_predict).")
flags.DEFINE_string("data_dir", None, "Directory with a --task_name dataset's files (instead "
                    "of --train_file/--eval_file/--predict_file).")
flags.DEFINE_enum("task_name", None, sorted(DATASET_FILES), "Known dataset in --data_dir.")
flags.DEFINE_enum("tag_scheme", None, ["IOB1", "IOB2", "IOBES"],
                  "Tag scheme of the files (default: detected from each file).")
flags.DEFINE_list("labels", None, "IOB2 labels in id order (default: O, then B-X, I-X for each "
                  "type of the training file; labels.txt beside --init_checkpoint when not "
                  "training).")
flags.DEFINE_integer("doc_stride", None, "Sentences longer than max_seq_length - 2 WordPieces "
                     "are cut into windows starting this many pieces apart (default: half a "
                     "window); each word is scored in the window where it has most context.")
cli.define_finetune_flags()
flags.mark_flags_as_required(["output_dir"])


def data_files() -> tuple:
    """(train, eval, predict) paths for the wanted do_* flags; missing files are errors."""
    names = ("train_file", "eval_file", "predict_file")
    wanted = (FLAGS.do_train, FLAGS.do_eval, FLAGS.do_predict)
    given = [FLAGS[name].value for name in names]
    if FLAGS.data_dir or FLAGS.task_name:
        if not (FLAGS.data_dir and FLAGS.task_name):
            raise InputError("--data_dir and --task_name go together (the dataset's files in "
                             "that directory)")
        if any(given):
            raise InputError("give either --data_dir with --task_name, or --train_file/"
                             "--eval_file/--predict_file, not both")
        given = [os.path.join(FLAGS.data_dir, f) for f in DATASET_FILES[FLAGS.task_name]]
    out = []
    for name, path, want in zip(names, given, wanted):
        flag = "do_" + {"train_file": "train", "eval_file": "eval", "predict_file": "predict"}[name]
        if want and not path:
            raise InputError(f"--{flag} needs --{name} (or --data_dir with --task_name)")
        if want and not os.path.isfile(path):
            raise InputError(f"--{name}: {path} does not exist or is not a file")
        out.append(path if want else None)
    return tuple(out)


def checkpoint_labels() -> list[str] | None:
    """--labels, else (not training) the labels.txt of a resumed --output_dir or beside a
    fine-tuned --init_checkpoint."""
    from bert_tf.data.conll import read_labels
    from bert_tf.serving.export import read_labels_file

    if FLAGS.labels or FLAGS.do_train:
        return FLAGS.labels
    beside_output = os.path.join(FLAGS.output_dir, "labels.txt")
    if os.path.isfile(beside_output):
        return read_labels(beside_output)
    return read_labels_file(FLAGS.init_checkpoint) if FLAGS.init_checkpoint else None


def main(argv):
    del argv
    from bert_tf.serving.token_classifier import default_doc_stride
    from bert_tf.training.ner import run_ner
    from bert_tf.training.strategy import create_strategy
    from bert_tf.training.tasks.token_classification import TokenClassificationOptions

    cli.check_finetune_flags(_export_model_name())
    train_file, eval_file, predict_file = data_files()
    doc_stride = FLAGS.doc_stride or default_doc_stride(FLAGS.max_seq_length)
    if doc_stride < 1:
        raise InputError(f"--doc_stride must be positive, got {FLAGS.doc_stride}")
    config, vocab = load_model_files(FLAGS.init_checkpoint, FLAGS.bert_config_file,
                                     FLAGS.vocab_file, FLAGS.max_seq_length, FLAGS.do_lower_case)
    if FLAGS.do_train and not FLAGS.init_checkpoint:
        logging.warning("--do_train without --init_checkpoint: training a randomly initialised "
                        "BERT from scratch; pass a pretrained checkpoint to fine-tune")
    labels = checkpoint_labels()
    # The strategy must exist before any other TensorFlow op (multi-worker, TPU).
    strategy = create_strategy(FLAGS.distribution_strategy, num_gpus=FLAGS.num_gpus,
                               tpu=FLAGS.tpu)
    options = TokenClassificationOptions(**cli.finetune_option_values(), doc_stride=doc_stride)
    result = run_ner(config, vocab, options, train_file=train_file, eval_file=eval_file,
                     predict_file=predict_file, labels=labels, tag_scheme=FLAGS.tag_scheme,
                     strategy=strategy)
    cli.finish_finetuning(result, "token_classifier", config, vocab, _export_model_name(),
                          labels=result["labels"], doc_stride=doc_stride)


def _export_model_name() -> str:
    return FLAGS.export_model_name or FLAGS.task_name or "ner"


if __name__ == "__main__":
    cli.run(main)
