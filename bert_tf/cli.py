"""Shared plumbing for the absl front-end scripts (the library itself never reads flags).

`run(main)` runs an absl `main` and turns the package's user-facing errors (bad files, configs,
checkpoints, flag values) into one clear line on stderr and exit status 2, instead of a traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from bert_tf.checkpoints.google import CheckpointError
from bert_tf.config import ConfigError
from bert_tf.text.vocab import VocabError

# Errors that describe bad input rather than a bug: shown without a traceback.
USER_ERRORS = (ConfigError, CheckpointError, VocabError, FileNotFoundError, ValueError)


def run(main: Callable[[list[str]], None]) -> None:
    """`absl.app.run(main)` with user errors reported as `<script>: error: <message>`."""
    from absl import app

    def guarded(argv):
        logging.getLogger("bert_tf").setLevel(logging.INFO)
        try:
            main(argv)
        except USER_ERRORS as e:
            print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)
