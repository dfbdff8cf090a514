"""Output files that appear whole or not at all.

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

__all__ = ["atomic_output", "is_local"]


def is_local(path: str | os.PathLike) -> bool:
    """True for a path of the local file system (not gs://, hdfs://, ...)."""
    return "://" not in os.fspath(path)


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
