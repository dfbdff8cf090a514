"""The development model server (bert_tf.serving.server) from the command line.

    python -m bert_tf.cli.serve --model_base_path=serving/mrpc --model_name=mrpc \
        [--port=8500] [--rest_api_port=8501] [--host=127.0.0.1] [--max_batch_size=1024] \
        [--max_request_bytes=67108864] [--poll_seconds=2] [--drain_seconds=10]

Serves until SIGINT or SIGTERM; then it stops accepting requests, lets those in flight finish
(at most --drain_seconds), says so and exits 0. Bad flags or paths: one line, exit status 2.
"""
from __future__ import annotations

import logging
import signal
import threading

from absl import flags

from bert_tf.cli import common as cli
from bert_tf.serving import server as serving_server

FLAGS = flags.FLAGS
logger = logging.getLogger("bert_tf")


def define_flags() -> None:
    flags.DEFINE_string("model_base_path", None,
                        "Directory of numeric version subdirectories holding SavedModels.")
    flags.DEFINE_string("model_name", None, "Name the model is served under.")
    flags.DEFINE_integer("port", 8500, "gRPC port, 0..65535 (0: pick a free one).")
    flags.DEFINE_integer("rest_api_port", 8501, "REST port, 0..65535 (0: pick a free one).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 exposes the server).")
    flags.DEFINE_integer("max_batch_size", serving_server.DEFAULT_MAX_BATCH_SIZE,
                         "Reject requests whose batch (0th dimension) is larger (0: no cap).")
    flags.DEFINE_integer("max_request_bytes", serving_server.DEFAULT_MAX_REQUEST_BYTES,
                         "Largest REST body / gRPC message accepted (0: no limit).")
    flags.DEFINE_float("poll_seconds", 0.0,
                       "Re-scan model_base_path for new versions this often (0: never).")
    flags.DEFINE_float("drain_seconds", serving_server.DEFAULT_DRAIN_SECONDS,
                       "On SIGTERM/SIGINT, wait this long for requests in flight to finish.")
    flags.mark_flags_as_required(["model_base_path", "model_name"])


def main(argv: list[str]) -> None:
    """Serves until SIGINT or SIGTERM, then drains."""
    del argv
    server = serving_server.ModelServer(
        FLAGS.model_base_path, FLAGS.model_name, host=FLAGS.host, grpc_port=FLAGS.port,
        rest_port=FLAGS.rest_api_port, max_batch_size=FLAGS.max_batch_size or None,
        max_request_bytes=FLAGS.max_request_bytes, poll_seconds=FLAGS.poll_seconds)
    stop = threading.Event()
    received = []

    def on_signal(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    server.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        logger.info("%s: no new requests; waiting up to %g s for those in flight",
                    received[0] if received else "stopping", FLAGS.drain_seconds)
        finished = server.drain(FLAGS.drain_seconds)
        logger.info("server stopped (%s)", "every request in flight finished" if finished
                    else f"requests still running after {FLAGS.drain_seconds:g} s were cut off")


if __name__ == "__main__":
    define_flags()
    cli.run(main, user_errors=(OSError,))  # e.g. a port in use: one line, exit status 2
