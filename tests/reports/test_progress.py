from __future__ import annotations

import io
import time

import pytest

from hwsim.progress import Progress, Working


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_when_the_stream_is_not_a_tty():
    stream = io.StringIO()
    with Progress(3, "runs", stream=stream) as bar:
        for _ in range(3):
            bar.advance()
    assert stream.getvalue() == ""
    assert (bar.done, bar.failed) == (3, 0)


def test_progress_is_silent_on_a_tty_when_quiet():
    stream = FakeTty()
    with Progress(2, "runs", stream=stream, quiet=True) as bar:
        bar.advance(2)
    assert stream.getvalue() == ""


def test_progress_on_a_tty_shows_done_total_failures_rate_and_ends_the_line():
    stream = FakeTty()
    with Progress(4, "compare", stream=stream, min_interval=0.0) as bar:
        bar.advance()
        assert "ETA" in bar.line() and "/s" in bar.line() and " 3 left" in bar.line()
        assert "[#####" + "." * 15 + "]" in bar.line()
        bar.advance(2, failed=True)
        bar.advance()
    text = stream.getvalue()
    assert text.startswith("\rcompare 0/4")
    assert "\rcompare 1/4" in text
    assert "compare 3/4 (2 failed)" in text
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("compare 4/4 (2 failed) [" + "#" * 20 + "]") and " in " in final
    assert " left" not in final
    assert text.endswith("\n") and text.count("\n") == 1


def test_progress_rejects_a_negative_total():
    with pytest.raises(ValueError):
        Progress(-1)


def test_working_line_shows_elapsed_time_on_a_tty_and_erases_itself():
    stream = FakeTty()
    with Working("worldkv: generating", stream=stream, interval=0.01):
        time.sleep(0.1)
    text = stream.getvalue()
    drawn = [part for part in text.split("\r") if part.startswith("worldkv: generating  ")]
    assert len(drawn) >= 2 and all(part.endswith(" s") for part in drawn)
    assert text.endswith("\r" + " " * max(map(len, drawn)) + "\r")


def test_working_line_is_silent_off_a_tty_or_when_quiet():
    for stream, quiet in ((io.StringIO(), False), (FakeTty(), True)):
        with Working("x", stream=stream, quiet=quiet, interval=0.01):
            time.sleep(0.03)
        assert stream.getvalue() == ""
