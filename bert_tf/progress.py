"""One progress reporter for long work: training, evaluation, prediction, vocab learning, export.

    >>> from bert_tf.progress import Progress
    >>> progress = Progress("predict", total=1000, unit="examples")  # doctest: +SKIP
    >>> for i in range(0, 1000, 100):                                  # doctest: +SKIP
    ...     progress.update(i + 100)

On a terminal it redraws one bar line (`predict [#####.....] 500/1000 examples 0:00:12, ETA 0:00:12`);
otherwise (CI logs, files) it prints plain lines, at the first update (so a slow first step or a
slow start is visible at once), then at least every `interval` seconds, and at the end — never
more often than `interval` whatever the step count. Work with no count to report (a TFLite
conversion, the vocab learner) uses `heartbeat`, which prints "still running" lines from a
thread. Written by hand rather than with tqdm: one dependency less, and the plain-line mode with
a time floor is what CI logs need.
"""
from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from typing import Iterator, TextIO

__all__ = ["Progress", "format_duration", "heartbeat", "DEFAULT_INTERVAL"]

# Seconds between two plain progress lines at most (a bar on a terminal redraws every second).
DEFAULT_INTERVAL = 30.0
_BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    """`H:MM:SS` (`?` for a negative or infinite duration)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    h, rem = divmod(int(round(seconds)), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Reports `done` of `total` units with elapsed time and ETA (see the module docstring).

    Args:
      label: what is running ("train", "predict", ...), the start of every line.
      total: units to do (None: unknown, no ETA).
      unit: shown after the counts ("steps", "examples").
      stream: where to write (default sys.stderr).
      interval: most seconds between two plain lines.
      bar: draw a bar (default: when `stream` is a terminal).
      delay: show nothing during the first `delay` seconds (work that ends sooner prints
        nothing; the end is shown only if something was shown before).
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "",
                 stream: TextIO | None = None, interval: float = DEFAULT_INTERVAL,
                 bar: bool | None = None, delay: float = 0.0, clock=time.monotonic):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval, self.delay = interval, delay
        self.bar = _is_terminal(self.stream) if bar is None else bar
        self._clock = clock
        self.start = clock()
        self._last_shown: float | None = None
        self._drawn = False
        self.lines = 0  # lines (or redraws) written, for tests and callers

    def elapsed(self) -> float:
        return self._clock() - self.start

    def due(self) -> bool:
        """True when the next update would be shown (first one, or `interval` has passed)."""
        if self._last_shown is None:
            return True
        return self._clock() - self._last_shown >= (1.0 if self.bar else self.interval)

    def mark(self) -> None:
        """Records that the caller reported progress itself now (restarts the interval)."""
        self._last_shown = self._clock()

    def update(self, done: int, detail: str = "", force: bool = False) -> bool:
        """Reports `done` units (and `detail`, e.g. the loss) if due, forced, or finished.
        Returns True when something was written."""
        finished = self.total is not None and done >= self.total
        if not force and self.elapsed() < self.delay:
            return False
        if not force and finished and self.delay and self._last_shown is None:
            return False  # quick work: nothing was shown, nothing to end
        if not (force or finished or self.due()):
            return False
        self._last_shown = self._clock()
        self._write(self.describe(done, detail), finished)
        return True

    def describe(self, done: int, detail: str = "") -> str:
        """The text of one report: label, counts, elapsed, ETA, detail."""
        elapsed = self.elapsed()
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            counts = f"{done}/{self.total}{unit}"
            if self.bar:
                filled = int(_BAR_WIDTH * min(done, self.total) / self.total)
                counts = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {counts}"
        else:
            counts = f"{done}{unit}"
        timing = format_duration(elapsed)
        if self.total and 0 < done < self.total:
            timing += f", ETA {format_duration(elapsed * (self.total - done) / done)}"
        return " ".join(part for part in (self.label, counts, timing, detail) if part)

    def _write(self, text: str, finished: bool) -> None:
        if self.bar:
            end = "\n" if finished else ""
            self.stream.write(f"\r\x1b[K{text}{end}")
            self._drawn = not finished
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.lines += 1

    def close(self) -> None:
        """Ends a bar line left open (after an early stop)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


@contextlib.contextmanager
def heartbeat(label: str, stream: TextIO | None = None,
              interval: float = DEFAULT_INTERVAL) -> Iterator[Progress]:
    """For one long call that reports no progress itself: prints `<label> ...` at the start,
    `<label> still running, <elapsed>` every `interval` seconds from a thread, and
    `<label> done in <elapsed>` when the block ends without an error."""
    progress = Progress(label, stream=stream, interval=interval, bar=False)
    progress._write(f"{label} ...", finished=False)
    stop = threading.Event()

    def beat():
        while not stop.wait(interval):
            progress._write(f"{label} still running, {format_duration(progress.elapsed())}",
                            finished=False)

    thread = threading.Thread(target=beat, name=f"heartbeat-{label}", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join()
    progress._write(f"{label} done in {format_duration(progress.elapsed())}", finished=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
