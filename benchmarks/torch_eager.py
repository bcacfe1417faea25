"""The PyTorch eager side of `--compare_torch`: the same HSNet (`convert/torch_hsnet.py`) trained
and run as a PyTorch user would on the CPU (float32, Adam, cross-entropy, torch's default
threads), so the JAX benchmark can time both in one process, interleaved, on the same load."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from convert import torch_hsnet


class TorchEager:
    """One eager train step (forward, cross-entropy, backward, Adam) and one inference forward
    (eval mode, no autograd) of `torch_hsnet.HSNet` on random float32 NCHW images.

    `freeze_stem` is KTL as PyTorch writes it: the stem's parameters have no gradient and its
    BatchNorm runs on the running statistics; Adam sees only the trainable parameters."""

    def __init__(self, *, batch_size: int, eval_batch_size: int, image_size: int, num_classes: int,
                 freeze_stem: bool, use_dib: bool, use_fgal: bool, learning_rate: float) -> None:
        torch.manual_seed(0)
        self.model = torch_hsnet.HSNet(num_classes, use_dib=use_dib, use_fgal=use_fgal,
                                       freeze_stem=freeze_stem)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._opt = torch.optim.Adam(trainable, lr=learning_rate)
        rng = np.random.default_rng(1)
        image = lambda n: torch.from_numpy(  # noqa: E731
            rng.standard_normal((n, 3, image_size, image_size), np.float32))
        self._x, self._eval_x = image(batch_size), image(eval_batch_size)
        self._y = torch.from_numpy(rng.integers(0, num_classes, batch_size))
        self.params = sum(p.numel() for p in self.model.parameters())
        self.trainable_params = sum(p.numel() for p in trainable)
        self.losses: list[float] = []

    def train(self, k: int) -> float:
        """Runs k train steps; returns their seconds."""
        self.model.train()
        t0 = time.perf_counter()
        for _ in range(k):
            loss = F.cross_entropy(self.model(self._x), self._y)
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
        seconds = time.perf_counter() - t0
        self.losses.append(loss.item())
        return seconds

    def infer(self) -> float:
        """One inference forward of the evaluation batch; returns its seconds."""
        self.model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            self.model(self._eval_x)
        return time.perf_counter() - t0


def versions() -> dict:
    """What the PyTorch side ran on: its version and thread count (its default: the cores)."""
    return dict(torch_version=torch.__version__, torch_threads=torch.get_num_threads())
