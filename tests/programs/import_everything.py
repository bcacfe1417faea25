"""Imports every module of hsnet_jax and compares the process-wide state before and after: signal
handlers, logging filters and handlers of every logger, sys's hooks and the warnings filters.
Its own interpreter, so nothing imported earlier by the test session hides a change."""

import importlib
import logging
import pkgutil
import signal
import sys
import warnings


def state() -> dict:
    loggers = {"": logging.getLogger()} | {name: logger for name, logger in logging.root.manager.loggerDict.items()
                                           if isinstance(logger, logging.Logger)}
    return {
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)},
        "hooks": (sys.excepthook, sys.unraisablehook, sys.displayhook, threading_hook()),
        "warnings": list(warnings.filters),
        "filters": {name: list(logger.filters) for name, logger in loggers.items() if logger.filters},
    }


def threading_hook():
    import threading

    return threading.excepthook


def main() -> None:
    import hsnet_jax

    # Third-party libraries set their own state on import (absl's handler, jax's warnings
    # filters): import them first, so only what the package itself does is compared.
    for name in ("jax", "flax", "optax", "orbax.checkpoint", "tensorflow_datasets", "grain", "absl.logging",
                 "matplotlib.pyplot", "tensorboardX", "ml_collections"):
        importlib.import_module(name)
    before = state()
    modules = [m.name for m in pkgutil.walk_packages(hsnet_jax.__path__, "hsnet_jax.")]
    for name in modules:
        importlib.import_module(name)
    after = state()
    changed = [key for key in before if before[key] != after[key]]
    for key in changed:
        print(f"{key} changed:\n  before {before[key]}\n  after  {after[key]}")
    print(f"imported {len(modules)} modules; " + ("no process state changed" if not changed else "CHANGED"))


if __name__ == "__main__":
    main()
