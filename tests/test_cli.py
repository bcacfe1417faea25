"""What every command shares: one-line errors, Ctrl-C without a traceback, and the trainer's
stop request (real signals sent to this process)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hsnet_jax.runtime import cli
from hsnet_jax.errors import HSNetError


def _raise(error):
    raise error


@pytest.mark.parametrize("error, code, line", [
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
    (HSNetError("bad thing in /x"), 1, "error: bad thing in /x"),
    (FileNotFoundError(2, "No such file or directory", "/proc/hsnet_x"), 1,
     "error: cannot use /proc/hsnet_x: No such file or directory"),
    (OSError(28, "No space left on device", "/mnt/full/run"), 1,
     "error: cannot use /mnt/full/run: No space left on device"),
    (cli.Stopped(signal.SIGTERM), 143, ""),
])
def test_failures_are_one_line_and_a_status(error, code, line, capsys):
    assert cli.run(_raise, error) == code
    assert capsys.readouterr().err == (line + "\n" if line else "")


def test_the_first_signal_asks_to_stop_and_later_ones_are_ignored():
    said = []
    before = signal.getsignal(signal.SIGINT)
    stop = cli.StopRequest(said.append)
    try:
        assert not stop.received
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received and stop.name == "Ctrl-C" and stop.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the save is not cut short
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGINT
    finally:
        stop.restore()
    assert said[0].startswith("Ctrl-C: finishing the steps in flight, then saving")
    assert said[1:] == ["Ctrl-C ignored: still saving", "SIGTERM ignored: still saving"]
    assert signal.getsignal(signal.SIGINT) is before
    assert cli.Stopped(stop.signum).code == 130


def test_ctrl_c_while_a_command_imports_is_one_line():
    """Ctrl-C before the command's own handling starts (jax, flax and TFDS import for a second
    or more): sent once the process has mapped jaxlib's first library (Linux /proc), while jax
    is still importing. Without the package's start-up handler: a traceback, or the interrupt
    swallowed in one of jax's garbage-collector callbacks and the command going on."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "hsnet_jax.evaluate", "--workdir", "/nonexistent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    deadline = time.monotonic() + 60
    while "jaxlib" not in open(f"/proc/{proc.pid}/maps").read():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "interrupted (Ctrl-C)\n" and out == "", err[-3000:]


def test_hsnet_debug_shows_the_traceback_behind_the_line(monkeypatch, capsys):
    def fail():
        try:
            {}["checkpoint"]
        except KeyError:
            raise HSNetError("the run has no checkpoint") from None  # one line hides the cause

    assert cli.run(fail) == 1
    assert capsys.readouterr().err == "error: the run has no checkpoint\n"
    monkeypatch.setenv("HSNET_DEBUG", "1")
    assert cli.run(fail) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'checkpoint'" in err and "in fail" in err
    assert err.endswith("error: the run has no checkpoint\n")
