"""Fine-tune BERT for named-entity recognition on CoNLL files (CoNLL-2003, WNUT-17 or your own),
with Google's run_classifier.py flag style (the command lives in bert_tf/cli/ner.py; `--help`
lists every flag)."""
from bert_tf.cli import common, ner

if __name__ == "__main__":
    common.run(ner.main)
