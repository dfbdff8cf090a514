"""run_classifier.py: fine-tune BERT on a GLUE / XNLI task or your own TSV/CSV (Google's
run_classifier.py flags), on one device, several GPUs, several workers or a TPU.

    python run_classifier.py --task_name=MRPC --data_dir=glue/MRPC \
      --vocab_file=uncased_L-12_H-768_A-12/vocab.txt \
      --bert_config_file=uncased_L-12_H-768_A-12/bert_config.json \
      --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
      --do_train --do_eval --do_predict --max_seq_length=128 --train_batch_size=32 \
      --learning_rate=2e-5 --num_train_epochs=3.0 --output_dir=out/mrpc [--num_seeds=5]

Your own file: --task_name=tsv (or csv) --text_column=0 [--text_pair_column=1]
--label_column=2 [--header] [--labels=neg,pos] [--regression]; train.tsv/dev.tsv/test.tsv in
--data_dir.

Outputs in --output_dir: eval_results.txt, test_results.tsv (class probabilities per line),
<TASK>.tsv (GLUE submission), bert_model.ckpt + bert_config.json (Google layout, with the
classifier's output_weights/output_bias). Rerunning resumes from the latest checkpoint; SIGTERM
saves one and exits 0. With --num_seeds=N each seed runs in output_dir/seed_<s> and
output_dir/eval_results.txt holds every seed's metrics plus their mean and std.
--export_dir also writes a TF Serving SavedModel (see export/README.md).
Trainer features (docs/training.md): --eval_every_n_steps, --keep_best_checkpoint_by,
--early_stopping_patience, --gradient_accumulation_steps, --jit_compile, --iterations_per_loop.
"""
import os

from absl import flags, logging

from bert_tf.checkpoints.model_files import load_model_files
from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("task_name", None, "Task: cola, sst-2, mrpc, sts-b, qqp, mnli, mnli-mm, "
                    "qnli, rte, wnli, xnli, or tsv/csv for your own files.")
flags.DEFINE_string("data_dir", None, "Directory with the task's train/dev/test files.")
cli.define_finetune_flags()  # with --bucket_size
flags.DEFINE_integer("num_seeds", 1, "Fine-tune this many seeds (seed, seed+1, ...) and report "
                     "mean and std of the eval metrics.")
# The generic tsv/csv processor and task options.
flags.DEFINE_string("text_column", None, "tsv/csv: column of text_a (index or header name).")
flags.DEFINE_string("text_pair_column", None, "tsv/csv: column of text_b (optional).")
flags.DEFINE_string("label_column", None, "tsv/csv: column of the label.")
flags.DEFINE_bool("header", False, "tsv/csv: the files' first row is a header.")
flags.DEFINE_list("labels", None, "tsv/csv: the labels in id order (default: learned from the "
                  "training file in first-seen order).")
flags.DEFINE_bool("regression", False, "tsv/csv: the label is a float score (MSE loss).")
flags.DEFINE_bool("multi_label", False, "tsv/csv: each example has any number of labels, "
                  "joined by --label_separator in the label column (sigmoid outputs, binary "
                  "cross-entropy; eval: eval_micro_f1, eval_macro_f1, eval_exact_match).")
flags.DEFINE_string("label_separator", ",", "--multi_label: separator of the labels in the "
                    "label column (and in the predictions file).")
flags.DEFINE_float("label_threshold", 0.5, "--multi_label: a label is predicted when its "
                   "probability exceeds this.")
flags.DEFINE_string("xnli_language", "zh", "xnli: the language of the dev/test rows.")
flags.mark_flags_as_required(["task_name", "data_dir", "output_dir"])


def _column(value):
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else value


def processor_kwargs(task: str) -> dict:
    """The processor's constructor arguments from the flags."""
    if task in ("tsv", "csv"):
        if FLAGS.text_column is None or FLAGS.label_column is None:
            raise InputError(f"--task_name={task} needs --text_column and --label_column")
        kwargs = dict(text_column=_column(FLAGS.text_column),
                      label_column=_column(FLAGS.label_column),
                      text_pair_column=_column(FLAGS.text_pair_column), header=FLAGS.header,
                      regression=FLAGS.regression)
        if FLAGS.labels:
            kwargs["labels"] = FLAGS.labels
        if FLAGS.multi_label:
            if FLAGS.regression or not FLAGS.label_separator:
                raise InputError("--multi_label needs a non-empty --label_separator and no "
                                 "--regression")
            kwargs["label_separator"] = FLAGS.label_separator
        return kwargs
    if FLAGS.multi_label:
        raise InputError(f"--multi_label is for your own files (--task_name=tsv or csv), not "
                         f"--task_name={task}")
    if task == "xnli":
        return {"language": FLAGS.xnli_language}
    return {}


def main(argv):
    del argv
    from bert_tf.data.glue import get_processor, normalize_task_name
    from bert_tf.training.finetune import (FinetuneOptions, run_finetuning,
                                           run_finetuning_seeds)
    from bert_tf.training.strategy import create_strategy

    cli.check_finetune_flags(_export_model_name(normalize_task_name(FLAGS.task_name)))
    if FLAGS.num_seeds < 1:
        raise InputError(f"--num_seeds must be >= 1, got {FLAGS.num_seeds}")
    if FLAGS.num_seeds > 1 and not FLAGS.do_eval:
        raise InputError("--num_seeds > 1 reports eval metrics over seeds: set --do_eval")
    task = normalize_task_name(FLAGS.task_name)
    processor = get_processor(task, **processor_kwargs(task))
    if not os.path.isdir(FLAGS.data_dir):
        raise InputError(f"--data_dir {FLAGS.data_dir} is not a directory")

    config, vocab = load_model_files(FLAGS.init_checkpoint, FLAGS.bert_config_file,
                                         FLAGS.vocab_file, FLAGS.max_seq_length,
                                         FLAGS.do_lower_case)
    if FLAGS.do_train and not FLAGS.init_checkpoint:
        logging.warning("--do_train without --init_checkpoint: fine-tuning a randomly initialised "
                        "BERT (training from scratch); pass a pretrained checkpoint to fine-tune")

    if FLAGS.export_dir and FLAGS.num_seeds > 1:
        raise InputError("--export_dir exports the model this run trains: it needs "
                         "--num_seeds=1 (export other checkpoints with "
                         "export/export_saved_model.py)")

    # The strategy must exist before any other TensorFlow op (multi-worker, TPU).
    strategy = create_strategy(FLAGS.distribution_strategy, num_gpus=FLAGS.num_gpus,
                               tpu=FLAGS.tpu)
    options = FinetuneOptions(**cli.finetune_option_values(), multi_label=FLAGS.multi_label,
                              label_threshold=FLAGS.label_threshold,
                              label_separator=FLAGS.label_separator)
    kwargs = dict(do_train=FLAGS.do_train, do_eval=FLAGS.do_eval, do_predict=FLAGS.do_predict,
                  strategy=strategy)
    if FLAGS.num_seeds > 1:
        result = run_finetuning_seeds(task, processor, FLAGS.data_dir, config, vocab, options,
                                      FLAGS.num_seeds, **kwargs)
    else:
        result = run_finetuning(task, processor, FLAGS.data_dir, config, vocab, options,
                                **kwargs)
    cli.finish_finetuning(result, "classifier", config, vocab, _export_model_name(task),
                          labels=result["trainer"].labels if "trainer" in result else None,
                          multi_label=FLAGS.multi_label, threshold=FLAGS.label_threshold,
                          label_separator=FLAGS.label_separator)


def _export_model_name(task: str) -> str:
    return FLAGS.export_model_name or task.replace("/", "_")



if __name__ == "__main__":
    cli.run(main)
