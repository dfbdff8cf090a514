"""Writing pretraining records: several TFRecord files filled round-robin, as Google's script
does, published only once complete (temporary names beside them until then).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Sequence

from bert_tf.data.pretraining_corpus import PretrainingDataError, split_list
from bert_tf.io import is_local, temporary_name

__all__ = ["RecordOutputs", "open_outputs", "write_records", "write_round_robin"]


@dataclasses.dataclass
class RecordOutputs:
    """The output files of a run: records go to temporary names beside them (local paths), which
    replace the named files only when every record is written, so an error, a full disk or a
    SIGTERM never leaves a truncated TFRecord file."""

    paths: list[str]
    temps: list[str]
    writers: list

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def publish(self) -> None:
        import tensorflow as tf

        for temp, path in zip(self.temps, self.paths):
            if temp != path:
                tf.io.gfile.rename(temp, path, overwrite=True)

    def discard(self) -> None:
        """Closes and removes what was written (best effort: cleanup must not hide the error)."""
        import tensorflow as tf

        for temp, writer in zip(self.temps, self.writers):
            try:
                writer.close()
                if tf.io.gfile.exists(temp):
                    tf.io.gfile.remove(temp)
            except Exception:  # noqa: BLE001
                pass


def open_outputs(output_files: str | Sequence[str]) -> RecordOutputs:
    """Opens a TFRecordWriter per path (creating missing directories); a path that cannot be
    written raises PretrainingDataError naming it."""
    import tensorflow as tf

    paths = split_list(output_files)
    if not paths:
        raise PretrainingDataError("--output_file is empty")
    outputs = RecordOutputs(paths, [temporary_name(p) if is_local(p) else p for p in paths], [])
    for path, temp in zip(paths, outputs.temps):
        try:
            if tf.io.gfile.isdir(path):
                raise PretrainingDataError(f"cannot write --output_file {path!r}: it is a "
                                           f"directory")
            parent = os.path.dirname(path)
            if parent and not tf.io.gfile.exists(parent):
                tf.io.gfile.makedirs(parent)
            outputs.writers.append(tf.io.TFRecordWriter(temp))
        except (tf.errors.OpError, OSError, PretrainingDataError) as e:
            outputs.discard()
            if isinstance(e, PretrainingDataError):
                raise
            reason = (getattr(e, "message", None) or str(e)).splitlines()[0]
            raise PretrainingDataError(f"cannot write --output_file {path!r}: {reason}") from None
    return outputs


def write_records(batches: Iterable[Sequence[bytes]], output_files: str | Sequence[str]
                  ) -> list[int]:
    """Writes batches of records round-robin (the i-th record overall to file
    i % len(files)), as Google's script does; the files appear only once complete.
    Returns the number of records per file."""
    outputs = open_outputs(output_files)
    try:
        counts = write_round_robin(batches, outputs)
        outputs.publish()
    except BaseException:
        outputs.discard()
        raise
    return counts


def write_round_robin(batches: Iterable[Sequence[bytes]], outputs: RecordOutputs) -> list[int]:
    writers = outputs.writers
    k = len(writers)
    counts = [0] * k
    total = 0
    try:
        for batch in batches:
            for j in range(k):  # record i of the batch goes to file (total + i) % k
                first = (j - total) % k
                write = writers[j].write
                for rec in batch[first::k]:
                    write(rec)
                counts[j] += len(batch[first::k])
            total += len(batch)
    finally:
        outputs.close()
    return counts
