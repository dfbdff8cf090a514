"""Send texts to a model served by TF Serving (or bert_tf.serving.server) and print the replies.

    python export/serving_client.py --server=localhost:8500 --protocol=grpc --model_name=mrpc \
      --text="The movie was great." --text="Terrible."
    python export/serving_client.py --server=localhost:8501 --protocol=rest --model_name=mrpc \
      --input_file=texts.txt --batch_size=16

One text per line of --input_file (or per --text); a `text_a ||| text_b` line goes to the pair
signature `text_pair` (inputs `text`, `text_b`), other lines to --signature_name (input `text`).
One line is printed per text: `label` and its probability (and all probabilities) for a
classifier, `score` for a regression model, the top tokens and scores of each [MASK] for a
masked LM, otherwise the output names and shapes. Errors: one line and exit status 2.
"""
from absl import flags

from bert_tf.cli import common as cli
from bert_tf.serving.client import ServingError

FLAGS = flags.FLAGS
flags.DEFINE_string("server", None, "host:port of the gRPC or REST API (REST: also http://...).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "API to call.")
flags.DEFINE_string("model_name", None, "Served model name.")
flags.DEFINE_integer("model_version", None, "Model version (default: the served one).")
flags.DEFINE_string("signature_name", "serving_default", "Signature for single texts.")
flags.DEFINE_multi_string("text", None, "A text (or `text_a ||| text_b`); repeatable.")
flags.DEFINE_string("input_file", None, "File with one text (or `text_a ||| text_b`) per line.")
flags.DEFINE_integer("batch_size", 32, "Texts per request.")
flags.DEFINE_float("timeout", 60.0, "Seconds per request.")
flags.mark_flags_as_required(["server", "model_name"])


def main(argv):
    del argv
    from bert_tf.serving import client

    lines = list(FLAGS.text or [])
    if FLAGS.input_file:
        with open(FLAGS.input_file, encoding="utf-8") as f:
            lines.extend(line.rstrip("\r\n") for line in f if line.strip())
    if not lines:
        raise ValueError("give --text or --input_file")

    def predict(signature, inputs):
        if FLAGS.protocol == "grpc":
            return client.predict_grpc(FLAGS.server, FLAGS.model_name, inputs, signature,
                                       FLAGS.model_version, timeout=FLAGS.timeout)
        url = FLAGS.server if "://" in FLAGS.server else f"http://{FLAGS.server}"
        return client.predict_rest(url, FLAGS.model_name, inputs, signature,
                                   FLAGS.model_version, timeout=FLAGS.timeout)

    for a, b, outputs in client.predict_texts(predict, lines, FLAGS.signature_name,
                                              FLAGS.batch_size):
        shown = a if b is None else f"{a} {client.PAIR_SEPARATOR} {b}"
        print(f"{shown}\t{client.format_prediction(outputs)}", flush=True)


if __name__ == "__main__":
    cli.run(main, user_errors=(ServingError,))
