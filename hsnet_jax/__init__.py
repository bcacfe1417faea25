"""hsnet-jax: HSNet (Fan et al. 2022) for facial expression recognition in JAX/Flax."""

import os
import signal
import sys

__version__ = "0.1.0"


def _ctrl_c_while_starting(signum, frame) -> None:
    """SIGINT handler of `python -m hsnet_jax.<command>` until `cli.run` takes over: Ctrl-C while
    jax, flax and TFDS import (seconds) ends like Ctrl-C later, one line and status 130. A
    handler, not an exception: a KeyboardInterrupt raised inside one of jax's garbage-collector
    callbacks during import is swallowed as "Exception ignored" and the command goes on."""
    print("interrupted (Ctrl-C)", file=sys.stderr, flush=True)
    os._exit(128 + signal.SIGINT)  # nothing has started yet that needs cleaning up


def hand_ctrl_c_to_the_command() -> None:
    """Called by `cli.run`: from here on Ctrl-C raises KeyboardInterrupt (or whatever handler the
    command installs), so locks are released and checkpoints saved."""
    if signal.getsignal(signal.SIGINT) is _ctrl_c_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Only for the commands that run under `cli.run`; a program that imports the package (and
# the benchmarks, whose temporary directories must be removed) keeps Python's handler.
_COMMANDS = ("hsnet_jax.train", "hsnet_jax.evaluate", "hsnet_jax.predict", "hsnet_jax.ablate",
             "hsnet_jax.data.prepare", "hsnet_jax.serve")
_argv = getattr(sys, "orig_argv", [])
if "-m" in _argv[:-1] and _argv[_argv.index("-m") + 1] in _COMMANDS:
    signal.signal(signal.SIGINT, _ctrl_c_while_starting)
