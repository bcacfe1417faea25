"""What every command-line entry point shares: one-line errors and a clean Ctrl-C.

`run(fn, ...)` calls the command's work and turns what a user can cause into one line on
stderr and an exit status: `HSNetError` and `OSError` (a path that cannot be written, a full
disk) -> "error: ..." and 1; a lost process of a multi-process run -> one line and 1
(`hsnet_jax.distributed`); Ctrl-C -> "interrupted (Ctrl-C)" and 130; a training run that a
signal stopped after saving (`Stopped`) -> 128 + the signal, its own message already printed.

`StopRequest` is the trainer's side: SIGTERM or the first Ctrl-C only ask the loop to stop at
the next dispatch boundary and save; later signals are ignored until the process ends, so no
checkpoint is ever left half-written by an impatient second Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable

import hsnet_jax
from hsnet_jax.errors import HSNetError

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class Stopped(Exception):
    """A run stopped by a signal after saving; `code` is the exit status (128 + signal)."""

    def __init__(self, signum: int):
        super().__init__(SIGNAL_NAMES.get(signum, str(signum)))
        self.code = 128 + signum


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StopRequest:
    """Remembers the first SIGTERM / SIGINT so the loop can save at a dispatch boundary."""

    def __init__(self, say: Callable[[str], None] = _say):
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

    def agreed(self) -> bool:
        """Whether any process received a signal: every process of a multi-process run must
        stop at the same dispatch boundary (a scheduler signals them at slightly different
        times, a terminal's Ctrl-C only those on its host). A collective per call, so the
        loop asks once per dispatch."""
        import jax

        if jax.process_count() == 1:
            return self.received
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


def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` or, for the failures above, the exit status after one line."""
    hsnet_jax.hand_ctrl_c_to_the_command()
    try:
        return fn(*args, **kwargs)
    except HSNetError as e:
        _say(f"error: {e}")
        return 1
    except OSError as e:
        _say(f"error: {os_error_line(e)}")
        return 1
    except Stopped as e:
        return e.code
    except KeyboardInterrupt:
        _say("interrupted (Ctrl-C)")
        return 128 + signal.SIGINT
    except Exception as e:  # a failed collective: another process is gone
        from hsnet_jax.distributed import exit_if_process_lost
        exit_if_process_lost(e)
        raise
