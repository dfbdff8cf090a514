"""Fine-tune BERT on SQuAD v1.1 / v2.0 and answer questions, with Google's run_squad.py flags
(the command lives in bert_tf/cli/squad.py; `--help` lists every flag)."""
from bert_tf.cli import common, squad

if __name__ == "__main__":
    common.run(squad.main)
