"""Library log records a command reports itself: dropped from absl's logger for one `with` block.

A command that turns a library's failure into its own one-line message (a checkpoint save that
failed, a dataset that is not prepared) does not want the library's record of the same event
printed beside it; everything else the library logs, and everything outside the block, still
reaches the user. Never process-wide: importing a module installs no filter
(tests/test_structure.py checks it).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator


@contextlib.contextmanager
def dropped(keep: Callable[[logging.LogRecord], bool]) -> Iterator[None]:
    """While the block runs, absl's logger passes on only the records for which `keep` is true."""
    logger = logging.getLogger("absl")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
