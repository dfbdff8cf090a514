"""Export a BERT checkpoint as a TF Serving SavedModel that takes raw strings.

    python export/export_saved_model.py --task=classifier --init_checkpoint=output/mrpc \
      --export_dir=serving --model_name=mrpc --max_seq_length=128 --do_lower_case=true

The command lives in `bert_tf/cli/export_saved_model.py` (flags and outputs described there).
"""
from bert_tf.cli import common as cli
from bert_tf.cli.export_saved_model import main

if __name__ == "__main__":
    cli.run(main)
