"""bert_tf.progress: plain lines at most every interval (first and last always), a bar on a
terminal, heartbeat lines for work without counts."""
import io
import re

from bert_tf.progress import Progress, format_duration, heartbeat


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_first_then_every_interval_then_last():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("predict", total=100, unit="examples", stream=out, interval=30,
                        clock=clock)
    clock.now += 4
    assert progress.update(1)  # the first update always shows (a slow start is visible)
    shown = []
    for done in range(2, 100):
        clock.now += 1
        shown.append(progress.update(done))
    assert shown.count(True) == 3  # 98 s of updates: 30, 60, 90 s after the first line
    clock.now += 1
    assert progress.update(100)  # the end always shows
    lines = out.getvalue().splitlines()
    assert lines[0] == "predict 1/100 examples 0:00:04, ETA 0:06:36"
    assert lines[-1] == "predict 100/100 examples 0:01:43"
    assert len(lines) == 5 and "\r" not in out.getvalue()


def test_bar_on_a_terminal_redraws_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    clock, out = FakeClock(), Tty()
    progress = Progress("train", total=4, unit="steps", stream=out, clock=clock)
    assert progress.bar
    for done in range(1, 5):
        clock.now += 2
        progress.update(done, "loss 0.5")
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert "train [############............] 2/4 steps 0:00:04, ETA 0:00:04 loss 0.5" in text


def test_unknown_total_and_durations():
    clock, out = FakeClock(), io.StringIO()
    Progress("vocab", stream=out, clock=clock).update(7, "words")
    assert out.getvalue() == "vocab 7 0:00:00 words\n"
    assert format_duration(3725) == "1:02:05" and format_duration(float("inf")) == "?"


def test_heartbeat_prints_while_the_block_runs():
    out = io.StringIO()
    with heartbeat("converting", stream=out, interval=0.05):
        import time

        time.sleep(0.18)
    lines = out.getvalue().splitlines()
    assert lines[0] == "converting ..."
    assert 2 <= sum(line.startswith("converting still running") for line in lines) <= 4
    assert re.fullmatch(r"converting done in 0:00:00", lines[-1])


def test_delay_keeps_quick_work_silent():
    clock, out = FakeClock(), io.StringIO()
    quick = Progress("eval", total=10, stream=out, delay=5, clock=clock)
    for done in range(1, 11):
        clock.now += 0.4
        quick.update(done)
    assert out.getvalue() == ""  # 4 s of work: nothing, not even the end
    slow = Progress("eval", total=10, stream=out, delay=5, clock=clock)
    for done in range(1, 11):
        clock.now += 1
        slow.update(done)
    assert out.getvalue().splitlines() == ["eval 5/10 0:00:05, ETA 0:00:05", "eval 10/10 0:00:10"]
