"""Send texts to a model served by TF Serving (or bert_tf.serving.server) and print the replies.

    python export/serving_client.py --server=localhost:8500 --protocol=grpc --model_name=mrpc \
      --text="The movie was great." --text="Terrible."
    python export/serving_client.py --server=localhost:8501 --protocol=rest --model_name=mrpc \
      --input_file=texts.txt --batch_size=16
    python export/serving_client.py --server=localhost:8500 --model_name=squad \
      --text="Where is the Eiffel Tower? ||| The Eiffel Tower is in Paris."

One text per line of --input_file (or per --text); a `text_a ||| text_b` line goes to the pair
signature `text_pair` (inputs `text`, `text_b`), other lines to --signature_name (input `text`).
A question-answering model (its signature's inputs, read from the model metadata the server
gives, are `question` and `context`) takes `question ||| context` lines.
One line is printed per text: the entities of a token classifier (`text/TYPE score
[start:end]`, code point offsets into the text), the answer of a question-answering model
(`answer=... [start:end] score=...`, offsets into the context; `no answer`), `label` and its
probability (and all probabilities) for a classifier, `score` for a regression model, the top
tokens and scores of each [MASK] for a masked LM, otherwise the output names and shapes.
Errors (a bad flag, an unreachable server, an error reply): one line and exit status 2.
TensorFlow is not imported: start-up takes well under a second.
"""
from __future__ import annotations

import re
import urllib.parse

from absl import flags

from bert_tf.cli import common as cli
from bert_tf.errors import InputError
from bert_tf.serving import client

FLAGS = flags.FLAGS
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


def define_flags() -> None:
    flags.DEFINE_string("server", None,
                        "host:port of the gRPC or REST API (REST: also http://host:port).")
    flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "API to call.")
    flags.DEFINE_string("model_name", None, "Served model name.")
    flags.DEFINE_integer("model_version", None, "Model version (default: the served one).")
    flags.DEFINE_string("signature_name", "serving_default",
                        "Signature for single texts and `question ||| context` lines.")
    flags.DEFINE_multi_string("text", None, "A text (or `text_a ||| text_b`, `question ||| "
                              "context`); repeatable.")
    flags.DEFINE_string("input_file", None,
                        "File with one text (or `text_a ||| text_b`) per line.")
    flags.DEFINE_integer("batch_size", 32, "Texts per request.")
    flags.DEFINE_float("timeout", 60.0, "Seconds per request.")
    flags.mark_flags_as_required(["server", "model_name"])


def server_address(server: str, protocol: str) -> str:
    """`--server` checked and normalised: `host:port` for gRPC, `http(s)://host:port[/...]` for
    REST. Raises InputError naming the flag and the expected form."""
    expected = ("host:port, e.g. localhost:8500" if protocol == "grpc"
                else "host:port or http://host:port, e.g. localhost:8501")
    target = server.strip()
    if protocol == "rest" and "://" in target:
        parts = urllib.parse.urlsplit(target)
        if parts.scheme not in ("http", "https"):
            raise InputError(f"--server={server}: expected {expected} (scheme http or https)")
        host_port, prefix = parts.netloc, f"{parts.scheme}://"
    else:
        host_port, prefix = target, ("http://" if protocol == "rest" else "")
    match = _HOST_PORT.match(host_port)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise InputError(f"--server={server}: expected {expected} (a port 1..65535)")
    return target if "://" in target else prefix + host_port


def _read_lines() -> list[str]:
    lines = list(FLAGS.text or [])
    if FLAGS.input_file:
        try:
            with open(FLAGS.input_file, encoding="utf-8", newline="") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else f"not UTF-8 ({e.reason})"
            raise InputError(f"--input_file {FLAGS.input_file}: {reason}") from None
        # Lines end at "\n" only (as Google's scripts read text): \f, \x85, U+2028 stay inside.
        lines.extend(line.rstrip("\r") for line in text.split("\n") if line.strip())
    if not lines:
        raise InputError("give --text or --input_file (one text per line)")
    return lines


def main(argv: list[str]) -> None:
    del argv
    address = server_address(FLAGS.server, FLAGS.protocol)
    if FLAGS.batch_size < 1:
        raise InputError(f"--batch_size must be positive, got {FLAGS.batch_size}")
    lines = _read_lines()
    grpc = FLAGS.protocol == "grpc"
    # The signature's inputs tell a question-answering model (question, context) from a text
    # model: one metadata call, which REST's predict_rest makes (and caches) anyway.
    signature_inputs = client.signature_inputs_grpc if grpc else client.signature_inputs_rest
    input_names = signature_inputs(address, FLAGS.model_name, FLAGS.signature_name,
                                   FLAGS.model_version, timeout=FLAGS.timeout)

    def predict(signature, inputs):
        call = client.predict_grpc if grpc else client.predict_rest
        return call(address, FLAGS.model_name, inputs, signature, FLAGS.model_version,
                    timeout=FLAGS.timeout)

    for a, b, outputs in client.predict_texts(predict, lines, FLAGS.signature_name,
                                              FLAGS.batch_size, input_names):
        shown = a if b is None else f"{a} {client.PAIR_SEPARATOR} {b}"
        print(f"{shown}\t{client.format_prediction(outputs)}", flush=True)


def run() -> None:
    """Defines the flags and runs `main` (the export/serving_client.py entry point)."""
    define_flags()
    cli.run(main, user_errors=(client.ServingError,))


if __name__ == "__main__":
    run()
