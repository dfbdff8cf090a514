"""Fine-tune BERT on a GLUE / XNLI task or your own TSV/CSV, with Google's run_classifier.py
flags (the command lives in bert_tf/cli/classify.py; `--help` lists every flag)."""
from bert_tf.cli import classify, common

if __name__ == "__main__":
    common.run(classify.main)
