"""Dynamic batching: requests that arrive together are processed as one batch by one thread.

The model and the face detector run fastest on many images at once (one padded forward pass
serves up to `max_batch` faces; photos of one size are detected together), so a worker thread
takes the first waiting request, collects more for at most `window_s` (or until `max_batch`),
and processes them together; requests arriving while a batch runs wait in the queue and form
the next one. The queue is bounded: a request that finds it full is refused at once
(`QueueFull`, the server's 503) rather than held in memory. A request that waits past its time
limit gets `asyncio.TimeoutError`; if its batch has not started yet, it is dropped unprocessed.
`max_batch=1` processes each request alone (no dynamic batching).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFull(Exception):
    """The queue holds `queue_size` requests already: come back later."""


class Batcher(Generic[Item, Result]):
    """`await batcher.submit(item, timeout)` -> `process([..., item, ...])`'s answer for it."""

    def __init__(self, process: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = 16,
                 window_s: float = 0.005, queue_size: int = 64):
        if max_batch < 1 or queue_size < 1 or window_s < 0:
            raise ValueError("max_batch and queue_size must be >= 1, window_s >= 0")
        self.process, self.max_batch, self.window_s = process, max_batch, window_s
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self.batch_sizes: list[int] = []  # size of every batch processed (the benchmark reads it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finishes the batch in progress, then ends the worker; waiting requests are cancelled."""
        while True:
            try:
                _, future = self._queue.get_nowait()
                future.cancel()
            except queue.Empty:
                break
        self._queue.put((None, None))
        self._thread.join()

    def queued(self) -> int:
        """Requests waiting (not counting the batch in progress)."""
        return self._queue.qsize()

    async def submit(self, item: Item, timeout: float) -> Result:
        """The answer for `item`; QueueFull at once when the queue is full, asyncio.TimeoutError after
        `timeout` seconds (the item is then dropped if its batch has not started)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._queue.put_nowait((item, future))
        except queue.Full:
            raise QueueFull from None
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def _collect(self, first: tuple) -> list[tuple]:
        batch, deadline = [first], time.monotonic() + self.window_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                entry = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if entry[1] is None:  # stop: put back for the loop, finish this batch
                self._queue.put(entry)
                break
            batch.append(entry)
        return batch

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first[1] is None:
                return
            live = [(item, f) for item, f in self._collect(first) if f.set_running_or_notify_cancel()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            try:
                answers = self.process([item for item, _ in live])
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for _, future in live:
                    future.set_exception(e)
                continue
            for (_, future), answer in zip(live, answers):
                future.set_result(answer)
