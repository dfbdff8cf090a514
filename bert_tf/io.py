"""Reading text inputs and writing outputs that appear whole or not at all.

Inputs: `read_input_bytes` names the flag and path of a missing file or a directory in one
InputError; `split_lines` splits on "\n" only, as Google's scripts read their inputs (Python's
`str.splitlines` would also split on form feed, U+0085, U+2028, ... and shift every line number).

Every tool that writes a result file goes through `atomic_output`: the data goes to a temporary
file beside the target, which is renamed over the target only when the writer finished without
an error. A full disk, a SIGTERM (see `bert_tf.cli.common.run`) or a bug mid-way leaves the
previous file (or none) instead of a truncated one, and the temporary file is removed.

Example:
    >>> from bert_tf.io import atomic_output
    >>> with atomic_output("/tmp/out.txt") as f:  # doctest: +SKIP
    ...     f.write("hello\\n")
"""
from __future__ import annotations

import contextlib
import os
from typing import IO, Iterator

from bert_tf.errors import InputError

__all__ = ["atomic_output", "is_local", "read_input_bytes", "split_lines"]


def is_local(path: str | os.PathLike) -> bool:
    """True for a path of the local file system (not gs://, hdfs://, ...)."""
    return "://" not in os.fspath(path)


def read_input_bytes(path: str | os.PathLike, flag: str = "--input_file") -> bytes:
    """The bytes of an input file (local or tf.io.gfile), with one clear InputError naming
    `flag` and the path when it is missing, a directory or unreadable."""
    import tensorflow as tf

    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise InputError(f"{flag} not found: {path}")
    if tf.io.gfile.isdir(path):
        raise InputError(f"{flag} {path} is a directory, expected a text file")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except (tf.errors.OpError, OSError) as e:
        reason = str(getattr(e, "message", None) or e).splitlines()[0]
        raise InputError(f"cannot read {flag} {path}: {reason}") from None


def split_lines(data: bytes) -> list[bytes]:
    """Lines of a file's bytes, split on b"\n" only; a final newline ends the last line rather
    than starting an empty one. Line contents (including any "\r") are left to the caller."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def temporary_name(path: str | os.PathLike) -> str:
    """A name beside `path` (same directory, so the final rename stays on one file system)."""
    path = os.fspath(path)
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w",
                  encoding: str | None = "utf-8") -> Iterator[IO]:
    """Opens a temporary file for writing; on a clean exit it replaces `path`, on any error it is
    removed and the error propagates.

    Args:
      path: the file to produce. Its directory must exist. Remote paths (gs://...) are written
        through tf.io.gfile directly, whose object stores publish a file only when it is closed.
      mode: "w" (text) or "wb" (bytes).
      encoding: for text mode.
    Yields:
      The open file object.
    Raises:
      OSError (with `filename` set to `path`) when the file cannot be created or written.
    """
    path = os.fspath(path)
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_output writes new files: mode 'w' or 'wb', got {mode!r}")
    if not is_local(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path, mode) as f:
            yield f
        return
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)
    tmp = temporary_name(path)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        if e.filename == tmp or e.filename is None:
            e.filename = path  # report the file the user named, not our temporary one
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
