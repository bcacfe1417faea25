r"""HSNet written again in PyTorch, independently of the Flax code: the reference the tests
compare the whole network against, and the PyTorch baseline the GPU benchmark times on the
same card.

  python benchmarks/torch_hsnet.py [--batch_size 32] [--image_size 224] [--bf16] [--steps 50]

prints one JSON line: frozen-stem (KTL) training images/s of eager PyTorch (float32 with TF32,
or bf16 autocast + channels_last with --bf16). Module names mirror the Flax model
(`stem.conv2d_1a.conv.weight` <-> params `stem/conv2d_1a/conv/kernel`), so `to_flax` is a
mechanical rename plus the OIHW -> HWIO and Linear transposes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)
        self.relu = nn.ReLU()


class Stem(nn.Sequential):
    def __init__(self):
        super().__init__()
        self.conv2d_1a = ConvBN(3, 32, 3, stride=2)
        self.conv2d_2a = ConvBN(32, 32, 3)
        self.conv2d_2b = ConvBN(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, 2)
        self.conv2d_3b = ConvBN(64, 80, 1)
        self.conv2d_4a = ConvBN(80, 192, 3)
        self.conv2d_4b = ConvBN(192, 256, 3, stride=2)


class RDIB(nn.Module):
    def __init__(self, ch: int, width: int, dilations: tuple[int, ...], scale: float):
        super().__init__()
        self.scale, self.n = scale, len(dilations)
        for i, d in enumerate(dilations):
            self.add_module(f"branch{i}_reduce", ConvBN(ch, width, 1))
            self.add_module(f"branch{i}_dilated", ConvBN(width, width, 3, padding=d, dilation=d))
        self.branch_1x1 = ConvBN(ch, width, 1)
        self.project = nn.Conv2d(width * (self.n + 1), ch, 1)

    def forward(self, x):
        out = [getattr(self, f"branch{i}_dilated")(getattr(self, f"branch{i}_reduce")(x)) for i in range(self.n)]
        out = self.project(torch.cat(out + [self.branch_1x1(x)], 1))
        return F.relu(x + self.scale * out)


class SDIB(nn.Module):
    def __init__(self, cin: int, specs: tuple[tuple[int, int, int], ...], pool_out: int):
        super().__init__()
        self.n = len(specs)
        for i, (reduce, out, d) in enumerate(specs):
            self.add_module(f"branch{i}_reduce", ConvBN(cin, reduce, 1))
            self.add_module(f"branch{i}_dilated", ConvBN(reduce, out, 3, stride=2, padding=d - 1, dilation=d))
        self.branch_pool = ConvBN(cin, pool_out, 1)

    def forward(self, x):
        out = [getattr(self, f"branch{i}_dilated")(getattr(self, f"branch{i}_reduce")(x)) for i in range(self.n)]
        return torch.cat(out + [self.branch_pool(F.max_pool2d(x, 3, 2))], 1)


class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.rdib_a = RDIB(256, 32, (1, 2), 0.17)
        self.sdib_a = SDIB(256, ((192, 384, 1), (192, 256, 2)), 256)
        self.rdib_b = RDIB(896, 128, (1, 2, 3), 0.10)
        self.sdib_b = SDIB(896, ((256, 384, 1), (256, 256, 2), (256, 256, 3)), 896)
        self.rdib_c = RDIB(1792, 192, (1,), 0.20)

    def forward(self, x):
        f_a = self.rdib_a(x)
        f_b = self.rdib_b(self.sdib_a(f_a))
        return f_a, f_b, self.rdib_c(self.sdib_b(f_b))


class FGAL(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.lat_c, self.lat_b, self.lat_a = nn.Conv2d(1792, 1792, 1), nn.Conv2d(1792, 896, 1), nn.Conv2d(896, 256, 1)
        for level, ch in (("a", 256), ("b", 896), ("c", 1792)):
            self.add_module(f"norm_{level}", nn.BatchNorm1d(ch, eps=1e-3, affine=False))
            self.add_module(f"gate_{level}", nn.Linear(ch, 1))
            self.add_module(f"classifier_{level}", nn.Linear(ch, num_classes))

    def forward(self, f_a, f_b, f_c):
        t_c = self.lat_c(f_c)
        t_b = f_b + F.interpolate(self.lat_b(t_c), size=f_b.shape[2:], mode="nearest")
        t_a = f_a + F.interpolate(self.lat_a(t_b), size=f_a.shape[2:], mode="nearest")
        logits = 0
        for level, t in (("a", t_a), ("b", t_b), ("c", t_c)):
            psi = getattr(self, f"norm_{level}")(t.mean((2, 3)))
            gate = torch.sigmoid(getattr(self, f"gate_{level}")(psi))
            logits = logits + gate * getattr(self, f"classifier_{level}")(psi)
        return logits


class HSNet(nn.Module):
    """docs/design.md section 1 in PyTorch (DIB + FGAL); `freeze_stem` = KTL (eval-mode BN, no grad)."""

    def __init__(self, num_classes: int = 7, freeze_stem: bool = False):
        super().__init__()
        self.stem, self.body, self.fgal = Stem(), Body(), FGAL(num_classes)
        self.freeze_stem = freeze_stem
        if freeze_stem:
            self.stem.requires_grad_(False)

    def forward(self, x):
        if self.freeze_stem:
            self.stem.eval()
            with torch.no_grad():
                x = self.stem(x)
        else:
            x = self.stem(x)
        return self.fgal(*self.body(x))


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights AND BatchNorm statistics/affines, so a comparison exercises every tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith(("running_mean", "bn.bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith("bn.weight"):
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
            else:
                fan_in = int(np.prod(t.shape[1:])) if t.ndim > 1 else 1792
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)
    return model


def to_flax(model: nn.Module) -> dict:
    """The module's state as HSNet `{"params", "batch_stats"}` numpy trees."""
    out: dict = {"params": {}, "batch_stats": {}}
    for key, t in model.state_dict().items():
        *path, leaf = key.split(".")
        if leaf == "num_batches_tracked":
            continue
        value = t.detach().cpu().numpy()
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        collection, name = {"weight": ("params", "kernel"), "bias": ("params", "bias"),
                            "running_mean": ("batch_stats", "mean"),
                            "running_var": ("batch_stats", "var")}[leaf]
        if path[-1] == "bn" and leaf == "weight":
            name = "scale"
        node = out[collection]
        for p in path:
            node = node.setdefault(p, {})
        node[name] = np.ascontiguousarray(value)
    return out


def benchmark(batch_size: int, image_size: int, bf16: bool, steps: int, warmup: int = 5) -> dict:
    """Eager KTL training throughput on random data on the GPU (the issue's PyTorch rows)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = HSNet(7, freeze_stem=True).to(device)
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device).to(memory_format=fmt)
    y = torch.randint(0, 7, (batch_size,), device=device)

    def step():
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        rates.append(batch_size / (time.perf_counter() - t0))
    return dict(framework="pytorch-eager", torch_version=torch.__version__,
                device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                batch_size=batch_size, image_size=image_size,
                precision="bf16 autocast + channels_last" if bf16 else "float32 (TF32 on)",
                train_img_per_s=round(statistics.median(rates), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(benchmark(args.batch_size, args.image_size, args.bf16, args.steps)), flush=True)


if __name__ == "__main__":
    main()
