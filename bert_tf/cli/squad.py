"""run_squad.py: fine-tune BERT on SQuAD v1.1 / v2.0 and answer questions (Google's run_squad.py
flags), on one device, several GPUs, several workers or a TPU.

    python run_squad.py --vocab_file=uncased_L-12_H-768_A-12/vocab.txt \
      --bert_config_file=uncased_L-12_H-768_A-12/bert_config.json \
      --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
      --do_train --train_file=train-v1.1.json --do_predict --predict_file=dev-v1.1.json \
      --train_batch_size=12 --learning_rate=3e-5 --num_train_epochs=2.0 \
      --max_seq_length=384 --doc_stride=128 --output_dir=out/squad

SQuAD v2.0: add --version_2_with_negative [--null_score_diff_threshold=...].

Outputs in --output_dir: predictions.json, nbest_predictions.json, null_odds.json (v2),
eval_results.txt (exact_match, f1; v2 also HasAns/NoAns and the best thresholds) when the
predict file has answers, bert_model.ckpt + bert_config.json + vocab.txt (Google layout, with
cls/squad/output_weights and output_bias). Rerunning resumes from the latest checkpoint; SIGTERM
saves one and exits 0. --export_dir also writes a TF Serving SavedModel whose
serving_default(question, context) answers on raw strings (docs/question_answering.md).
"""
import logging as std_logging

from absl import flags, logging

from bert_tf.checkpoints.model_files import load_model_files
from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
# Google's flags.
flags.DEFINE_string("vocab_file", None, "vocab.txt (default: beside --init_checkpoint).")
flags.DEFINE_string("bert_config_file", None,
                    "bert_config.json (default: beside --init_checkpoint).")
flags.DEFINE_string("init_checkpoint", None,
                    "Google checkpoint: pretrained (new span head) or fine-tuned by run_squad "
                    "(head loaded). Ignored when --output_dir has a checkpoint (resume).")
flags.DEFINE_bool("do_lower_case", True, "Lower-case input (True for uncased models).")
flags.DEFINE_bool("do_train", False, "Train on --train_file.")
flags.DEFINE_string("train_file", None, "SQuAD JSON for training, e.g. train-v1.1.json.")
flags.DEFINE_bool("do_predict", False, "Answer the questions of --predict_file.")
flags.DEFINE_string("predict_file", None, "SQuAD JSON to answer, e.g. dev-v1.1.json.")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size (windows).")
flags.DEFINE_integer("predict_batch_size", 8, "Global prediction batch size (windows).")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate (Adam with weight decay).")
flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs.")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the training steps of linear warmup.")
flags.DEFINE_integer("max_seq_length", 384, "Window length after WordPiece (question + context).")
flags.DEFINE_integer("doc_stride", 128, "How far apart consecutive windows over a long context "
                     "start, in WordPiece tokens.")
flags.DEFINE_integer("n_best_size", 20, "Start/end candidates per window, and the length of "
                     "nbest_predictions.json's lists.")
flags.DEFINE_bool("verbose_logging", False, "Log why get_final_text could not map an answer "
                  "back onto the original text.")
flags.DEFINE_string("output_dir", None, "Checkpoints, predictions and results go here.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
cli.define_question_answering_flags()  # max_query_length, max_answer_length, v2, threshold
# Ours.
cli.define_distribution_flags()
cli.define_loop_flags()
cli.define_trainer_flags()
cli.define_bucket_flag()
flags.DEFINE_integer("seed", None, "Random seed (head initialisation, shuffling, dropout).")
flags.DEFINE_string("export_dir", None, "After training, export the model as a TF Serving "
                    "SavedModel (question and context strings in) to "
                    "<export_dir>/<export_model_name>/<version>.")
flags.DEFINE_string("export_model_name", "squad", "Model name for --export_dir.")
flags.mark_flags_as_required(["output_dir"])


def _check_flags() -> None:
    if not (FLAGS.do_train or FLAGS.do_predict):
        raise InputError("at least one of --do_train or --do_predict must be set")
    if FLAGS.do_train and not FLAGS.train_file:
        raise InputError("--do_train needs --train_file (a SQuAD JSON file)")
    if FLAGS.do_predict and not FLAGS.predict_file:
        raise InputError("--do_predict needs --predict_file (a SQuAD JSON file)")
    if FLAGS.export_dir and not FLAGS.do_train:
        raise InputError("--export_dir exports the model this run trains: it needs --do_train "
                         "(export other checkpoints with export/export_saved_model.py "
                         "--task=question_answering)")


def main(argv):
    del argv
    from bert_tf.training.squad import QuestionAnsweringOptions, run_squad
    from bert_tf.training.strategy import create_strategy

    _check_flags()
    if FLAGS.verbose_logging:  # bert_tf's library logger (get_final_text's reasons)
        std_logging.getLogger("bert_tf").setLevel(std_logging.DEBUG)
    config, vocab = load_model_files(FLAGS.init_checkpoint, FLAGS.bert_config_file,
                                     FLAGS.vocab_file, FLAGS.max_seq_length, FLAGS.do_lower_case)
    if FLAGS.do_train and not FLAGS.init_checkpoint:
        logging.warning("--do_train without --init_checkpoint: fine-tuning a randomly initialised "
                        "BERT (training from scratch); pass a pretrained checkpoint to fine-tune")
    if FLAGS.export_dir:
        from bert_tf.serving.export import version_dir

        version_dir(FLAGS.export_dir, FLAGS.export_model_name)  # fails now, not after training
    # The strategy must exist before any other TensorFlow op (multi-worker, TPU).
    strategy = create_strategy(FLAGS.distribution_strategy, num_gpus=FLAGS.num_gpus,
                               tpu=FLAGS.tpu)
    options = QuestionAnsweringOptions(
        output_dir=FLAGS.output_dir, max_seq_length=FLAGS.max_seq_length,
        do_lower_case=FLAGS.do_lower_case, train_batch_size=FLAGS.train_batch_size,
        predict_batch_size=FLAGS.predict_batch_size, learning_rate=FLAGS.learning_rate,
        num_train_epochs=FLAGS.num_train_epochs, warmup_proportion=FLAGS.warmup_proportion,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        mixed_precision=FLAGS.mixed_precision, log_steps=FLAGS.log_steps, seed=FLAGS.seed,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max, init_checkpoint=FLAGS.init_checkpoint,
        doc_stride=FLAGS.doc_stride, n_best_size=FLAGS.n_best_size, bucket_size=FLAGS.bucket_size,
        **cli.question_answering_kwargs(FLAGS), **cli.trainer_flag_values())
    result = run_squad(config, vocab, options,
                       train_file=FLAGS.train_file if FLAGS.do_train else None,
                       predict_file=FLAGS.predict_file if FLAGS.do_predict else None,
                       strategy=strategy)
    cli.finish_finetuning(result, "question_answering", config, vocab, FLAGS.export_model_name,
                          doc_stride=FLAGS.doc_stride, **cli.question_answering_kwargs(FLAGS))


if __name__ == "__main__":
    cli.run(main)
