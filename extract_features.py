"""Extract contextual token features with a BERT checkpoint (Google's extract_features.py flags).

    python extract_features.py --input_file=input.txt --output_file=features.jsonl \
      --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt --layers=-1,-2,-3,-4

Google's path and flags; the command lives in `bert_tf/cli/extract_features.py`.
"""
from bert_tf.cli import common as cli
from bert_tf.cli.extract_features import main

if __name__ == "__main__":
    cli.run(main)
