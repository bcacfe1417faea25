"""hsnet_jax.runtime.progress on the streams it meets: a file-like non-terminal (plain lines,
no carriage returns, at most one per tenth) and a real pseudo-terminal (tqdm's live bar)."""

import contextlib
import fcntl
import io
import os
import struct
import termios

import pytest

from hsnet_jax.runtime.progress import SECONDS_VARIABLE, Progress, is_terminal


def _count(total: int, stream, *, initial: int = 0, disable: bool = False) -> None:
    with Progress(total, "epoch 1/3", "step", initial=initial, disable=disable, stream=stream) as bar:
        for i in range(initial, total):
            bar.set_postfix(loss=f"{1 / (i + 1):.4f}")
            bar.update()


def test_a_non_terminal_gets_one_plain_line_per_tenth(monkeypatch):
    monkeypatch.setenv(SECONDS_VARIABLE, "0")
    stream = io.StringIO()
    _count(1000, stream)
    text = stream.getvalue()
    assert "\r" not in text and not is_terminal(stream)
    lines = text.splitlines()
    assert [line.split(":")[1].split()[0] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[0].startswith("epoch 1/3: 10% (100/1000 step), ") and "elapsed" in lines[0]
    assert lines[-1].endswith("loss 0.0010")  # the figures set before the update that wrote the line


def test_lines_are_at_most_one_per_interval(monkeypatch):
    monkeypatch.delenv(SECONDS_VARIABLE, raising=False)  # the default: a line at most every 60 s
    stream = io.StringIO()
    _count(1000, stream)  # done in far less than a minute: the caller's summary says the rest
    assert stream.getvalue() == ""


def test_a_resumed_count_reports_from_where_it_starts(monkeypatch):
    monkeypatch.setenv(SECONDS_VARIABLE, "0")
    stream = io.StringIO()
    _count(100, stream, initial=45)
    assert [line.split()[2] for line in stream.getvalue().splitlines()] == ["50%", "60%", "70%", "80%", "90%", "100%"]
    disabled = io.StringIO()
    _count(100, disabled, disable=True)
    assert disabled.getvalue() == ""


def test_a_terminal_gets_the_live_bar():
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        with os.fdopen(slave, "w") as tty:
            assert is_terminal(tty)
            _count(50, tty)
        chunks = []
        with contextlib.suppress(OSError):  # EIO once everything written is read
            while chunk := os.read(master, 1 << 16):
                chunks.append(chunk)
        output = b"".join(chunks).decode()
    finally:
        os.close(master)
    assert "\r" in output and "epoch 1/3: 100%|" in output and "50/50" in output


@pytest.mark.parametrize("stream", [io.StringIO(), open(os.devnull, "w")])
def test_closed_or_plain_streams_are_not_terminals(stream):
    stream.close()
    assert not is_terminal(stream)
