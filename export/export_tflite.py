"""Convert a BERT classifier or encoder to TFLite, tokenization inside (for Android/iOS).

    python export/export_tflite.py --saved_model_dir=serving/mrpc/1 \
      --output_file=mrpc.tflite --quantize=dynamic_int8

The command lives in `bert_tf/cli/export_tflite.py` (flags and outputs described there).
"""
from bert_tf.cli import common as cli
from bert_tf.cli.export_tflite import main

if __name__ == "__main__":
    cli.run(main)
