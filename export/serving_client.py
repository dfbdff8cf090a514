"""Send texts to a model served by TF Serving (or bert_tf.serving.server) and print the replies.

    python export/serving_client.py --server=localhost:8500 --protocol=grpc --model_name=mrpc \
      --text="The movie was great." --text="Terrible."

A thin wrapper: the flags and the logic are in bert_tf/cli/serving_client.py (see its --help).
"""
from bert_tf.cli.serving_client import run

if __name__ == "__main__":
    run()
