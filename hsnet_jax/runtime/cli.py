"""What every command-line entry point shares: one-line errors, a clean Ctrl-C, one way to print.

`run(fn, ..., preload=MODULES)` imports the command's heavy modules (jax, flax, TFDS: seconds)
with a Ctrl-C handler that ends the process at once with one line and status 130 (a
KeyboardInterrupt raised inside one of jax's garbage-collector callbacks during import would be
swallowed as "Exception ignored" and the command would go on), then gives Ctrl-C back to
Python and calls the command's work, turning what a user can cause into one line on stderr and
an exit status: `HSNetError` and `OSError` (a path that cannot be written, a full disk) ->
"error: ..." and 1; a lost process of a multi-process run -> one line and 1
(`hsnet_jax.runtime.distributed`); Ctrl-C -> "interrupted (Ctrl-C)" and 130; a training run
that a signal stopped after saving (`Stopped`) -> 128 + the signal, its own message already
printed. `HSNET_DEBUG=1` prints the full traceback behind any of these lines.

`StopRequest` is the trainer's side: SIGTERM or the first Ctrl-C only ask the loop to stop at
the next dispatch boundary and save; later signals are ignored until the process ends, so no
checkpoint is ever left half-written by an impatient second Ctrl-C.

This module imports nothing heavy, so commands can import it before anything else.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from typing import Any, Callable, Sequence

from hsnet_jax.errors import HSNetError

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class Stopped(Exception):
    """A run stopped by a signal after saving; `code` is the exit status (128 + signal)."""

    def __init__(self, signum: int):
        super().__init__(SIGNAL_NAMES.get(signum, str(signum)))
        self.code = 128 + signum


def say(message: str) -> None:
    """A line for the user on stderr; in a multi-process run only process 0 speaks."""
    jax = sys.modules.get("jax")  # not imported yet: a single process
    if jax is None or jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


def _shout(message: str) -> None:
    """A line every process prints (its own error or interruption)."""
    print(message, file=sys.stderr, flush=True)


class StopRequest:
    """Remembers the first SIGTERM / SIGINT so the loop can save at a dispatch boundary."""

    def __init__(self, say: Callable[[str], None] = say):
        self.signum: int | None = None
        self._say = say
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNAL_NAMES}

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            self._say(f"{SIGNAL_NAMES[signum]}: finishing the steps in flight, then saving "
                      "(further Ctrl-C is ignored until the checkpoint is written)")
        else:
            self._say(f"{SIGNAL_NAMES[signum]} ignored: still saving")

    @property
    def received(self) -> bool:
        return self.signum is not None

    def agreed(self, check_all: bool = True) -> bool:
        """Whether any process received a signal: every process of a multi-process run must
        stop at the same dispatch boundary (a scheduler signals them at slightly different
        times, a terminal's Ctrl-C only those on its host). The agreement is a host-blocking
        collective, so the loop asks for it (`check_all`) only every few dispatches, at the
        same ones on every process; in between, and with one process, it costs nothing."""
        jax = sys.modules.get("jax")
        if jax is None or jax.process_count() == 1:
            return self.received
        if not check_all:
            return False
        import numpy as np
        from jax.experimental import multihost_utils

        signals = multihost_utils.process_allgather(np.asarray(self.signum or 0, np.int32))
        if self.signum is None and signals.any():
            self.signum = int(signals[signals > 0][0])
        return self.signum is not None

    @property
    def name(self) -> str:
        return SIGNAL_NAMES.get(self.signum, "signal")

    def restore(self) -> None:
        """Back to the previous handlers (what runs after the loop is not resumable)."""
        for s, previous in self._previous.items():
            signal.signal(s, previous)


def os_error_line(e: OSError) -> str:
    """"cannot use PATH: No space left on device" style text for an OSError."""
    if e.filename is not None and e.strerror:
        return f"cannot use {e.filename}: {e.strerror}"
    return str(e)


def _interrupted_while_starting(signum, frame) -> None:
    _shout("interrupted (Ctrl-C)")
    os._exit(128 + signal.SIGINT)  # nothing has started yet that needs cleaning up


def _debug(e: BaseException) -> None:
    """With HSNET_DEBUG=1: the whole traceback, causes included (even those raised `from None`)."""
    if os.environ.get("HSNET_DEBUG") == "1":
        cause: BaseException | None = e
        while cause is not None:
            cause.__suppress_context__ = False
            cause = cause.__cause__ or cause.__context__
        traceback.print_exception(e)


def run(fn: Callable[..., Any], *args: Any, preload: Sequence[str] = (), **kwargs: Any) -> Any:
    """Imports `preload` (the command's heavy modules) with Ctrl-C ending the process at once,
    then `fn(*args, **kwargs)`, or for the failures above the exit status after one line."""
    previous = signal.signal(signal.SIGINT, _interrupted_while_starting)
    try:
        for module in preload:
            importlib.import_module(module)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        return fn(*args, **kwargs)
    except HSNetError as e:
        _debug(e)
        _shout(f"error: {e}")
        return 1
    except OSError as e:
        _debug(e)
        _shout(f"error: {os_error_line(e)}")
        return 1
    except Stopped as e:
        return e.code
    except KeyboardInterrupt as e:
        _debug(e)
        _shout("interrupted (Ctrl-C)")
        return 128 + signal.SIGINT
    except Exception as e:  # a failed collective: another process is gone
        from hsnet_jax.runtime.distributed import exit_if_process_lost
        exit_if_process_lost(e)
        raise


def parse_config_flags(argv: list[str]) -> list[str]:
    """absl's parser for the config-driven commands (`--config FILE --config.KEY=VALUE`), with a
    bad config file or override (which ml_collections reports as AttributeError, KeyError,
    TypeError, ValueError or OSError) as a one-line error, not a traceback."""
    from absl import flags

    try:
        argv = flags.FLAGS(argv)
        flags.FLAGS.config.keys()  # the config file is loaded lazily: fail here, not later
        return argv
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
        while e.args and isinstance(e.args[0], BaseException):  # ml_collections wraps its KeyError
            e = e.args[0]
        message = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        _shout(f"error: {' '.join(message.split())}")
        sys.exit(2)


def run_config_command(define_flags: Callable[[], None], main: Callable[[list[str]], int],
                       preload: Sequence[str]) -> None:
    """The program of a config-driven command: its flags (defined only when it runs as a
    program), absl's `app.run` with the one-line flag errors, `main` under `run`."""
    from absl import app

    define_flags()

    def checked(argv: list[str]) -> int:
        if len(argv) > 1:
            _shout(f"error: unexpected arguments {' '.join(argv[1:])}")
            return 2
        return run(main, argv, preload=preload)

    app.run(lambda argv: sys.exit(checked(argv)), flags_parser=parse_config_flags)
