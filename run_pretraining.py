"""Pretrain BERT (masked LM + next sentence) on Google's TFRecords, with Google's
run_pretraining.py flags (the command lives in bert_tf/cli/pretrain.py; `--help` lists every
flag)."""
from bert_tf.cli import common, pretrain

if __name__ == "__main__":
    common.run(pretrain.main)
