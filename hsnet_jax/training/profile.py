"""`--profile_steps A:B`: a `jax.profiler` trace of the training steps A to B (global step
numbers) in WORKDIR/profile, for whoever tunes speed. TensorBoard's profile plugin and Perfetto
read it. The trace starts before the dispatch holding step A and stops after the one holding
step B has finished, so whole dispatches are traced."""

from __future__ import annotations

import os

import jax


class StepProfiler:
    """Starts and stops the trace as the loop passes the steps; does nothing without steps."""

    def __init__(self, workdir: str, steps: tuple[int, int] | None):
        self.steps = steps
        self.directory = os.path.join(workdir, "profile")
        self.tracing = False

    def at(self, first: int, end: int) -> None:
        """Called before the dispatch that trains global steps [first, end)."""
        if self.steps is None:
            return
        start, stop = self.steps
        if self.tracing and first >= stop:
            self.close()
        elif not self.tracing and first < stop and end > start:  # the dispatch overlaps [A, B)
            jax.profiler.start_trace(self.directory)
            self.tracing = True

    def close(self) -> None:
        """Stops a running trace (at the end of the run too), after the device work in flight."""
        if self.tracing:
            jax.effects_barrier()
            jax.profiler.stop_trace()
            self.tracing = False
            self.steps = None  # one trace per run
