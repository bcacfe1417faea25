"""Progress output that fits where it goes: every bar of this package (training epochs, the
decoding of `prepare`) is a `Progress`.

On a terminal it is a live tqdm bar. Anywhere else (a log file, nohup, CI, a job scheduler) a
bar's carriage-return refreshes would bury the lines that matter, so it writes plain lines
instead: one when the count crosses a tenth of the total (10%, 20%, ...), at most one a minute
(`HSNET_PROGRESS_SECONDS`, default 60; 0: at every tenth). At most 10 lines per bar, none for
a bar that finishes within the minute: the caller's summary (the epoch line, prepare's table)
follows either way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

STEPS = 10  # a line when the count crosses a tenth of the total
SECONDS_VARIABLE = "HSNET_PROGRESS_SECONDS"
DEFAULT_SECONDS = 60.0


def is_terminal(stream: IO[str]) -> bool:
    """Whether `stream` is an interactive terminal (a closed or odd stream counts as not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def line_interval() -> float:
    """Seconds at least between two plain progress lines: $HSNET_PROGRESS_SECONDS or 60."""
    return float(os.environ.get(SECONDS_VARIABLE) or DEFAULT_SECONDS)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class Progress:
    """A count towards `total`, shown on `stream` (default stderr) as above; tqdm's names for
    what the call sites use (`update`, `set_postfix`, `close`, `disable`, `initial`, `n`).
    `disable`: shows nothing (e.g. processes other than 0 of a multi-host run)."""

    def __init__(self, total: int, desc: str, unit: str = "it", *, initial: int = 0, disable: bool = False,
                 stream: IO[str] | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.initial = self.n = initial
        self.disable = disable
        self.stream = stream if stream is not None else sys.stderr
        self._postfix: dict[str, Any] = {}
        self._bar = None
        if not disable and is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream,
                             dynamic_ncols=True)
        self._start = self._last = time.monotonic()
        self._interval = line_interval()
        self._written = self._tenth()

    def _tenth(self) -> int:
        return self.n * STEPS // self.total if self.total > 0 else 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self.disable and self._tenth() > self._written and \
                time.monotonic() - self._last >= self._interval:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        """Figures shown after the count (the loss, images/s): on the bar, or on the next line."""
        self._postfix = values
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def _line(self) -> None:
        now = time.monotonic()
        elapsed = now - self._start
        done = self.n - self.initial
        left = f", ~{_clock(elapsed * (self.total - self.n) / done)} left" if done > 0 else ""
        extra = "".join(f", {key} {value}" for key, value in self._postfix.items())
        percent = 100 * self.n // self.total
        print(f"{self.desc}: {percent}% ({self.n}/{self.total} {self.unit}), {_clock(elapsed)} elapsed{left}{extra}",
              file=self.stream, flush=True)
        self._written, self._last = self._tenth(), now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
