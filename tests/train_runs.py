"""The training CLI as a real subprocess, for the end-to-end tests: the command of a tiny
run (48 training images, 75 px), a running trainer whose stderr is read as it comes, and
the comparisons that say two runs ended the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = ("images_per_s", "train_seconds", "epoch_seconds")


def command(workdir, data_dir, *extra, module: str = "hsnet_jax.train") -> list[str]:
    # threshold 0.99: after the first epoch (an improvement on inf) none improves, so with
    # patience 0 (PyTorch's meaning: cut after more than 0 bad epochs) the rate falls after the
    # second epoch, and the third trains at 0.1x.
    return [sys.executable, "-m", module, "--config", "configs/demo.py", "--workdir", str(workdir),
            "--config.dataset=synthetic/small", f"--config.data_dir={data_dir}",
            "--config.max_train_examples=48", "--config.max_eval_examples=28", "--config.batch_size=8",
            "--config.num_epochs=3", "--config.steps_per_dispatch=1", "--config.eval_batch_size=16",
            "--config.plateau.patience=0", "--config.plateau.threshold=0.99", *extra]


def run(cmd, env, timeout=600, log=None) -> subprocess.CompletedProcess:
    """Runs `cmd` to its end; with `log` (a path) stderr goes to that file, as under nohup, and
    comes back as written, carriage returns included."""
    if log is None:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    with open(log, "w") as f:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=f, text=True, timeout=timeout)
    with open(log, newline="") as f:
        return subprocess.CompletedProcess(cmd, result.returncode, result.stdout, f.read())


class Trainer:
    """A started process whose stderr a thread collects, so a test can wait for a line."""

    def __init__(self, cmd, env):
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read1(4096):
            self._chunks.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def wait_for(self, marker: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.stderr:
            assert self.proc.poll() is None or marker in self.stderr, f"ended without {marker!r}: {self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"no {marker!r} in {timeout} s: {self.stderr[-3000:]}"
            time.sleep(0.05)

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(timeout=10)
        return code, self.stderr


def start_and_signal(cmd, env, marker: str, sig) -> tuple[int, str]:
    """Starts a run, sends `sig` once `marker` shows in its stderr, returns (code, stderr)."""
    trainer = Trainer(cmd, env)
    trainer.wait_for(marker)
    trainer.proc.send_signal(sig)
    return trainer.finish()


def metrics(workdir) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def leaves(tree) -> list[np.ndarray]:
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in leaves(tree[k])]
    return [np.asarray(tree)]


def assert_same_run(workdir, reference_workdir) -> None:
    """Both runs ended with bit-identical latest and best weights and the same metrics."""
    from hsnet_jax.runtime import checkpoint

    for which in ("latest", "best"):
        ours, theirs = (checkpoint.restore_variables(w, which) for w in (workdir, reference_workdir))
        for a, b in zip(leaves(ours), leaves(theirs), strict=True):
            np.testing.assert_array_equal(a, b)
    strip = lambda rs: [{k: v for k, v in r.items() if k not in TIMING} for r in rs]  # noqa: E731
    assert strip(metrics(workdir)) == strip(metrics(reference_workdir))
