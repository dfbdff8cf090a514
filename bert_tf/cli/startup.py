"""Quiet start-up for every command: TensorFlow's C++ start-up and CUDA probing lines are hidden
unless `--verbosity` / `-v` asks for them (`--verbosity=debug` or `-v 1` shows everything).

This must act before TensorFlow is imported, so `bert_tf.cli` calls `configure(sys.argv)` when it
is imported (the top-level scripts and `bert-tf` import it first). Two mechanisms:

- environment: TF_CPP_MIN_LOG_LEVEL=2 (C++ INFO/WARNING off) and TF_CPP_MAX_VLOG_LEVEL=-1, unless
  the user set them;
- a stderr line filter: the lines XLA/TSL log before `absl::InitializeLog()` ("oneDNN custom
  operations are on", "Could not find cuda drivers", cpu_feature_guard, and on CPU-only machines
  the error-level "failed call to cuInit ... (303)") ignore TF_CPP_MIN_LOG_LEVEL (TensorFlow issue
  100442), so they are dropped from file descriptor 2. The filter runs in a small child process
  that forwards everything else unchanged: a crash of the command (a segfault, os._exit) still
  gets its full traceback through, and child processes (tf-text's vocab learner) are filtered too.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

# absl's verbosity levels (absl.logging): debug is 1, info 0, warning -1, error -2, fatal -3.
_LEVEL_NAMES = {"debug": 1, "info": 0, "warning": -1, "error": -2, "fatal": -3}

# C++ start-up lines that TF_CPP_MIN_LOG_LEVEL cannot hide: absl's pre-initialisation banner,
# INFO/WARNING lines of any C++ file, the continuation line of cpu_feature_guard, and the
# error-level CUDA probes a machine without a GPU driver prints.
STARTUP_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+\.cc:\d+\]"
    rb"|E\d{4} [\d:.]+ +\d+ [\w.]+\.cc:\d+\] (failed call to cuInit"
    rb"|Unable to register cu\w+ factory|oneDNN supports DT_\w+ only on platforms)"
    rb"|To enable the following instructions: .*rebuild TensorFlow"
    # The TFLite converter's report of the tf-text custom ops (export_tflite prints its own
    # "custom ops:" line) and the interpreter's delegate banner.
    rb"|Custom ops: |Details:$|\ttf\.\S+\(|See instructions: https://www\.tensorflow\.org/lite/"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate)")

# The filter process: stdin is the command's stderr; the original stderr is its stdout. Only the
# standard library (started with -S -E: no site packages, no PYTHON* variables) for a fast start.
# It ignores SIGINT/SIGTERM (Ctrl-C reaches the whole process group): it ends at EOF, after the
# command's last line ("interrupted; partial outputs were removed").
_FILTER_CODE = (
    "import re, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "noise = re.compile(%r)\n"
    "out = sys.stdout.buffer\n"
    "for line in sys.stdin.buffer:\n"
    "    if not noise.match(line):\n"
    "        out.write(line); out.flush()\n")

_filter: subprocess.Popen | None = None
_original_stderr: int | None = None


def requested_verbosity(argv: list[str]) -> int:
    """The absl verbosity `--verbosity=N|name` / `--verbosity N` / `-v N` / `-v=N` in argv
    (absl parses the flag itself later; this only peeks, before TensorFlow is imported).
    0 (info) when absent or not understood."""
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--":
            break
        for flag in ("--verbosity", "-v"):
            if arg == flag and i + 1 < len(argv):
                return _parse_level(argv[i + 1])
            if arg.startswith(flag + "="):
                return _parse_level(arg[len(flag) + 1:])
    return 0


def _parse_level(value: str) -> int:
    value = value.strip().lower()
    if value in _LEVEL_NAMES:
        return _LEVEL_NAMES[value]
    try:
        return int(value)
    except ValueError:
        return 0


def number_verbosity_names(argv: list[str]) -> None:
    """Rewrites `--verbosity=debug` (and info, warning, error, fatal; `-v debug`, ...) in place as
    the number absl's integer flag parses (debug is 1)."""
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--":
            break
        for flag in ("--verbosity", "-v"):
            if arg.startswith(flag + "=") and arg[len(flag) + 1:].lower() in _LEVEL_NAMES:
                argv[i] = f"{flag}={_LEVEL_NAMES[arg[len(flag) + 1:].lower()]}"
            elif (arg == flag and i + 1 < len(argv)
                  and argv[i + 1].lower() in _LEVEL_NAMES):
                argv[i + 1] = str(_LEVEL_NAMES[argv[i + 1].lower()])


def is_debug(argv: list[str]) -> bool:
    """True when the command was asked for debug output (every TensorFlow line)."""
    return requested_verbosity(argv) >= 1


def configure(argv: list[str]) -> None:
    """Sets the logging environment for a command about to import TensorFlow and, unless debug
    output was asked for, starts the stderr filter; level names in `argv` become numbers (see
    `number_verbosity_names`). Idempotent."""
    number_verbosity_names(argv)
    if is_debug(argv):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_CPP_MAX_VLOG_LEVEL", "-1")
    # Under pytest, commands run in-process share pytest's captured stderr: leave it alone
    # (the tests of commands run them as subprocesses, which do get the filter).
    if "pytest" not in sys.modules:
        start_stderr_filter()


def start_stderr_filter() -> None:
    """Routes file descriptor 2 through the noise filter (see the module docstring)."""
    global _filter, _original_stderr
    if _filter is not None or "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        _filter = subprocess.Popen(
            [sys.executable, "-S", "-E", "-c", _FILTER_CODE % STARTUP_NOISE.pattern],
            stdin=subprocess.PIPE, stdout=original, stderr=original, close_fds=True)
    except OSError:  # no stderr, no fork: run unfiltered rather than fail
        _filter = None
        return
    os.dup2(_filter.stdin.fileno(), 2)
    _filter.stdin.close()  # our fd 2 is now the only writer we hold
    _original_stderr = original
    import atexit

    atexit.register(_stop_stderr_filter)


def _stop_stderr_filter() -> None:
    """At exit: give fd 2 back to the original stderr (what is written during interpreter
    shutdown goes there unfiltered) and let the filter forward its last lines first."""
    if _filter is None or _original_stderr is None:
        return
    try:
        sys.stderr.flush()
        os.dup2(_original_stderr, 2)
        _filter.wait(timeout=2)  # longer only if a child process still holds the pipe
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
