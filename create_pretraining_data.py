"""Create BERT pretraining TFRecords from raw text (Google's create_pretraining_data.py flags).

    python create_pretraining_data.py --input_file='corpus/*.txt' \
      --output_file=data/part-0.tfrecord --vocab_file=vocab.txt --max_seq_length=128

Google's path and flags; the command lives in `bert_tf/cli/create_pretraining_data.py`.
"""
from bert_tf.cli import common as cli
from bert_tf.cli.create_pretraining_data import main

if __name__ == "__main__":
    cli.run(main)
