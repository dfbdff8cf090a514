"""run_pretraining.py: pretrain BERT (masked LM + next sentence) on Google's TFRecords
(Google's run_pretraining.py flags), on one device, several GPUs, several workers or a TPU.

    python run_pretraining.py --input_file='data/part-*.tfrecord' --output_dir=out \
      --bert_config_file=configs/bert_tiny.json --do_train --do_eval \
      --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \
      --num_train_steps=10000 --num_warmup_steps=1000 --learning_rate=1e-4 \
      [--init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt] \
      [--distribution_strategy=mirrored] [--mixed_precision=mixed_bfloat16]

Rerunning the same command resumes from the latest checkpoint in --output_dir and stops at
exactly --num_train_steps. SIGTERM saves a checkpoint and exits 0. At the end the weights are
also written as a Google checkpoint (output_dir/bert_model.ckpt + bert_config.json, and a copy
of --vocab_file as vocab.txt when it is given: a complete model directory that run_classifier.py
and the export tools take as --init_checkpoint alone), and --do_eval writes
output_dir/eval_results.txt.
"""
from absl import flags, logging

from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
# Google's flags.
flags.DEFINE_string("bert_config_file", None, "bert_config.json of the model to pretrain.")
flags.DEFINE_string("input_file", None,
                    "TFRecord file(s): comma-separated glob patterns (train and eval).")
flags.DEFINE_string("output_dir", None, "Checkpoints, summaries and results go here.")
flags.DEFINE_string("init_checkpoint", None,
                    "Google checkpoint to start from (ignored when output_dir has a checkpoint).")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length the records were written with.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Masked positions per sequence the records were written with.")
flags.DEFINE_bool("do_train", False, "Train.")
flags.DEFINE_bool("do_eval", False, "Evaluate (after training when both are set).")
flags.DEFINE_integer("train_batch_size", 32,
                     "Global batch (all replicas) of one forward pass; a step uses "
                     "train_batch_size * gradient_accumulation_steps examples.")
flags.DEFINE_integer("eval_batch_size", 8, "Global evaluation batch size.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
flags.DEFINE_integer("num_train_steps", 100000, "Optimizer steps.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Linear warmup steps.")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
flags.DEFINE_integer("max_eval_steps", 100, "Evaluation batches.")
# Ours.
cli.define_distribution_flags()
cli.define_loop_flags()
cli.define_trainer_flags()
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Google's AdamWeightDecay or LAMB.")
flags.DEFINE_integer("seed", None, "Random seed (initialisation, shuffling, dropout).")
flags.DEFINE_bool("dynamic_masking", False,
                  "Re-mask every batch (RoBERTa-style) instead of using the records' masks; "
                  "needs --vocab_file for the special token ids.")
flags.DEFINE_string("vocab_file", None, "vocab.txt the records were made with: copied to "
                    "output_dir/vocab.txt (a complete Google checkpoint directory); needed by "
                    "--dynamic_masking.")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masking rate of --dynamic_masking.")
flags.mark_flags_as_required(["bert_config_file", "input_file", "output_dir"])


def main(argv):
    del argv
    from bert_tf.config import BertConfig
    from bert_tf.training.tasks.pretraining import PretrainingOptions, run_pretraining
    from bert_tf.training.strategy import create_strategy

    if not (FLAGS.do_train or FLAGS.do_eval):
        raise InputError("at least one of --do_train or --do_eval must be set")
    config = BertConfig.from_json_file(FLAGS.bert_config_file)
    config.check_max_seq_length(FLAGS.max_seq_length)
    vocab = None
    if FLAGS.dynamic_masking and not FLAGS.vocab_file:
        raise InputError("--dynamic_masking needs --vocab_file (for the [MASK], [CLS], "
                         "[SEP] and [PAD] ids)")
    if FLAGS.vocab_file:
        from bert_tf.text import load_vocab

        vocab = load_vocab(FLAGS.vocab_file)
        config.check_vocab_fits(len(vocab), FLAGS.vocab_file)

    # The strategy must exist before any other TensorFlow op (multi-worker, TPU).
    strategy = create_strategy(FLAGS.distribution_strategy, num_gpus=FLAGS.num_gpus,
                               tpu=FLAGS.tpu)

    if vocab is not None:
        _copy_vocab(FLAGS.vocab_file, FLAGS.output_dir)
    batch_transform = None
    if FLAGS.dynamic_masking:
        from bert_tf.data.dynamic_masking import dynamic_masking_fn

        batch_transform = dynamic_masking_fn(
            config.vocab_size, vocab.mask_id, vocab.cls_id, vocab.sep_id, vocab.pad_id,
            FLAGS.max_predictions_per_seq, masked_lm_prob=FLAGS.masked_lm_prob, seed=FLAGS.seed)

    options = PretrainingOptions(
        output_dir=FLAGS.output_dir, max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        train_batch_size=FLAGS.train_batch_size, eval_batch_size=FLAGS.eval_batch_size,
        learning_rate=FLAGS.learning_rate, num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps, max_eval_steps=FLAGS.max_eval_steps,
        optimizer_type=FLAGS.optimizer, mixed_precision=FLAGS.mixed_precision,
        **cli.trainer_flag_values(), log_steps=FLAGS.log_steps, seed=FLAGS.seed,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max, init_checkpoint=FLAGS.init_checkpoint)
    result = run_pretraining(config, options, train_input=FLAGS.input_file,
                             eval_input=FLAGS.input_file, do_train=FLAGS.do_train,
                             do_eval=FLAGS.do_eval, strategy=strategy,
                             train_batch_transform=batch_transform)
    if result["preempted"]:
        logging.info("stopped by SIGTERM at step %d; rerun the same command to resume",
                     result["global_step"])
    else:
        logging.info("done at step %d", result["global_step"])



def _copy_vocab(vocab_file: str, output_dir: str) -> None:
    """output_dir/vocab.txt: the same bytes as --vocab_file (beside the Google checkpoint)."""
    import tensorflow as tf

    from bert_tf.checkpoints.google import VOCAB_NAME
    from bert_tf.io import atomic_output, read_input_bytes

    data = read_input_bytes(vocab_file, "--vocab_file")
    tf.io.gfile.makedirs(output_dir)
    with atomic_output(f"{output_dir.rstrip('/')}/{VOCAB_NAME}", "wb") as f:
        f.write(data)


if __name__ == "__main__":
    cli.run(main)
