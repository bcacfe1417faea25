r"""HSNet written again in PyTorch, independently of the Flax code: the model a run exported by
`convert/export_torch.py` loads into, the reference the tests compare the whole network
against, and the PyTorch baseline the GPU benchmark times on the same card.

    from convert.torch_hsnet import load_exported
    model = load_exported("hsnet.pt")   # eval mode; model.class_names, model.preprocessing
    logits = model(x)                   # x: NCHW float, (pixels - 127.5) / 128, image_size^2

  python convert/torch_hsnet.py [--batch_size 32] [--image_size 224] [--bf16] [--steps 50]

prints one JSON line: frozen-stem (KTL) training images/s of eager PyTorch (float32 with TF32,
or bf16 autocast + channels_last with --bf16). Module names mirror the Flax model
(`stem.conv2d_1a.conv.weight` <-> params `stem/conv2d_1a/conv/kernel`), so `to_flax` and
`from_flax` are a mechanical rename plus the OIHW <-> HWIO and Linear transposes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Sequential):
    """facenet's BasicConv2d: conv without bias, BatchNorm (eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, k, stride: int = 1, padding=0, dilation: int = 1):
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


class _Branches(nn.Module):
    """Parallel chains of ConvBN layers, named as facenet-pytorch's (`branch1_0`, `branch1_1`)."""

    def __init__(self, branches: dict[str, list[ConvBN]]):
        super().__init__()
        self.paths = []
        for name, layers in branches.items():
            names = [name] if len(layers) == 1 else [f"{name}_{i}" for i in range(len(layers))]
            for n, layer in zip(names, layers):
                self.add_module(n, layer)
            self.paths.append(names)

    def branch_outputs(self, x) -> list[torch.Tensor]:
        out = []
        for names in self.paths:
            y = x
            for n in names:
                y = getattr(self, n)(y)
            out.append(y)
        return out


class _Block(_Branches):
    """Inception-ResNet residual tail: concat branches, 1x1 `conv2d` with bias, x + scale * it."""

    def __init__(self, ch: int, scale: float, no_relu: bool, branches: dict[str, list[ConvBN]]):
        super().__init__(branches)
        self.scale, self.no_relu = scale, no_relu
        self.conv2d = nn.Conv2d(sum(layers[-1].conv.out_channels for layers in branches.values()), ch, 1)

    def forward(self, x):
        out = x + self.scale * self.conv2d(torch.cat(self.branch_outputs(x), 1))
        return out if self.no_relu else F.relu(out)


def block35(scale: float) -> _Block:
    return _Block(256, scale, False, {"branch0": [ConvBN(256, 32, 1)],
                                      "branch1": [ConvBN(256, 32, 1), ConvBN(32, 32, 3, padding=1)],
                                      "branch2": [ConvBN(256, 32, 1), ConvBN(32, 32, 3, padding=1),
                                                  ConvBN(32, 32, 3, padding=1)]})


def block17(scale: float) -> _Block:
    return _Block(896, scale, False, {"branch0": [ConvBN(896, 128, 1)],
                                      "branch1": [ConvBN(896, 128, 1), ConvBN(128, 128, (1, 7), padding=(0, 3)),
                                                  ConvBN(128, 128, (7, 1), padding=(3, 0))]})


def block8(scale: float = 1.0, no_relu: bool = False) -> _Block:
    return _Block(1792, scale, no_relu, {"branch0": [ConvBN(1792, 192, 1)],
                                         "branch1": [ConvBN(1792, 192, 1), ConvBN(192, 192, (1, 3), padding=(0, 1)),
                                                     ConvBN(192, 192, (3, 1), padding=(1, 0))]})


class _Reduction(_Branches):
    """Mixed_6a / Mixed_7a: strided branches and a max-pool, concatenated."""

    def forward(self, x):
        return torch.cat(self.branch_outputs(x) + [F.max_pool2d(x, 3, 2)], 1)


class InceptionResnetV1Body(nn.Module):
    """facenet's body between the stem and the pooling (HSNet with `use_dib=False`)."""

    def __init__(self):
        super().__init__()
        for i in range(5):
            self.add_module(f"repeat_1_{i}", block35(0.17))
        self.mixed_6a = _Reduction({"branch0": [ConvBN(256, 384, 3, stride=2)],
                                    "branch1": [ConvBN(256, 192, 1), ConvBN(192, 192, 3, padding=1),
                                                ConvBN(192, 256, 3, stride=2)]})
        for i in range(10):
            self.add_module(f"repeat_2_{i}", block17(0.10))
        self.mixed_7a = _Reduction({"branch0": [ConvBN(896, 256, 1), ConvBN(256, 384, 3, stride=2)],
                                    "branch1": [ConvBN(896, 256, 1), ConvBN(256, 256, 3, stride=2)],
                                    "branch2": [ConvBN(896, 256, 1), ConvBN(256, 256, 3, padding=1),
                                                ConvBN(256, 256, 3, stride=2)]})
        for i in range(5):
            self.add_module(f"repeat_3_{i}", block8(0.20))
        self.block8 = block8(no_relu=True)

    def _repeat(self, x, stage: int, n: int):
        for i in range(n):
            x = getattr(self, f"repeat_{stage}_{i}")(x)
        return x

    def forward(self, x):
        f_a = self._repeat(x, 1, 5)
        f_b = self._repeat(self.mixed_6a(f_a), 2, 10)
        return f_a, f_b, self.block8(self._repeat(self.mixed_7a(f_b), 3, 5))


class FGAL(nn.Module):
    """Eq. 11-17; `standardize` adds the parameter-free BatchNorm on psi (hsnet_jax's default)."""

    def __init__(self, num_classes: int, standardize: bool = True):
        super().__init__()
        self.standardize = standardize
        self.lat_c, self.lat_b, self.lat_a = nn.Conv2d(1792, 1792, 1), nn.Conv2d(1792, 896, 1), nn.Conv2d(896, 256, 1)
        for level, ch in (("a", 256), ("b", 896), ("c", 1792)):
            if standardize:
                self.add_module(f"norm_{level}", nn.BatchNorm1d(ch, eps=1e-3, affine=False))
            self.add_module(f"gate_{level}", nn.Linear(ch, 1))
            self.add_module(f"classifier_{level}", nn.Linear(ch, num_classes))

    def forward(self, f_a, f_b, f_c):
        """Returns (logits, gates [N, 3])."""
        t_c = self.lat_c(f_c)
        t_b = f_b + F.interpolate(self.lat_b(t_c), size=f_b.shape[2:], mode="nearest")
        t_a = f_a + F.interpolate(self.lat_a(t_b), size=f_a.shape[2:], mode="nearest")
        logits, gates = 0, []
        for level, t in (("a", t_a), ("b", t_b), ("c", t_c)):
            psi = t.mean((2, 3))
            if self.standardize:
                psi = getattr(self, f"norm_{level}")(psi)
            gates.append(torch.sigmoid(getattr(self, f"gate_{level}")(psi)))
            logits = logits + gates[-1] * getattr(self, f"classifier_{level}")(psi)
        return logits, torch.cat(gates, 1)


class HSNet(nn.Module):
    """docs/design.md section 1 in PyTorch, with hsnet_jax's switches: `use_dib` (else facenet's
    Inception-ResNet-v1 body), `use_fgal` (else one Linear `classifier` on pooled F^C),
    `fgal_standardize`; `freeze_stem` = KTL (eval-mode BN, no grad). NCHW input, `normalize`d."""

    def __init__(self, num_classes: int = 7, use_dib: bool = True, use_fgal: bool = True,
                 fgal_standardize: bool = True, freeze_stem: bool = False):
        super().__init__()
        self.stem = Stem()
        self.body = Body() if use_dib else InceptionResnetV1Body()
        if use_fgal:
            self.fgal = FGAL(num_classes, fgal_standardize)
        else:
            self.classifier = nn.Linear(1792, num_classes)
        self.use_fgal, self.freeze_stem = use_fgal, freeze_stem
        if freeze_stem:
            self.stem.requires_grad_(False)

    def forward(self, x, return_gates: bool = False):
        """Logits [N, classes]; with `return_gates` also FGAL's gates [N, 3] (None without FGAL)."""
        if self.freeze_stem:
            self.stem.eval()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_stem):
            x = self.stem(x)
        f_a, f_b, f_c = self.body(x)
        if self.use_fgal:
            logits, gates = self.fgal(f_a, f_b, f_c)
        else:
            logits, gates = self.classifier(f_c.mean((2, 3))), None
        return (logits, gates) if return_gates else logits


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


_LEAVES = {"weight": ("params", "kernel"), "bias": ("params", "bias"),
           "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _flax_location(key: str) -> tuple[str, list[str], str]:
    """A state-dict key's place in HSNet's Flax variables: (collection, module path, leaf)."""
    *path, leaf = key.split(".")
    collection, name = _LEAVES[leaf]
    if path[-1] == "bn" and leaf == "weight":
        name = "scale"
    return collection, path, name


def _to_hwio(value: np.ndarray) -> np.ndarray:
    """OIHW -> HWIO (conv), (out, in) -> (in, out) (Linear); the inverse is `_from_hwio`."""
    return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T if value.ndim == 2 else value


def _from_hwio(value: np.ndarray) -> np.ndarray:
    return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T if value.ndim == 2 else value


def to_flax(model: nn.Module) -> dict:
    """The module's state as HSNet `{"params", "batch_stats"}` numpy trees."""
    out: dict = {"params": {}, "batch_stats": {}}
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        collection, path, name = _flax_location(key)
        node = out[collection]
        for p in path:
            node = node.setdefault(p, {})
        node[name] = np.array(_to_hwio(t.detach().cpu().numpy()), order="C")  # a copy, not a view of t
    return out


def from_flax(model: nn.Module, variables: dict) -> dict[str, torch.Tensor]:
    """`model`'s state dict filled from HSNet `{"params", "batch_stats"}` (the inverse of
    `to_flax`); a missing or misshapen variable raises KeyError / ValueError naming the key."""
    state = {}
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(t)  # momentum is fixed (0.1): the count is never used
            continue
        collection, path, name = _flax_location(key)
        node = variables[collection]
        for p in path + [name]:
            if p not in node:
                raise KeyError(f"{key}: no {collection}/{'/'.join(path + [name])} in the Flax variables")
            node = node[p]
        value = np.ascontiguousarray(_from_hwio(np.asarray(node, np.float32)))
        if value.shape != tuple(t.shape):
            raise ValueError(f"{key}: Flax shape {value.shape} is not {tuple(t.shape)}")
        state[key] = torch.from_numpy(value)
    return state


def sidecar_path(path: str) -> str:
    """hsnet.pt -> hsnet.json: the class names, architecture and preprocessing of an export."""
    return os.path.splitext(path)[0] + ".json"


def load_exported(path: str) -> HSNet:
    """The HSNet `convert/export_torch.py` wrote to `path` (+ its JSON sidecar), in eval mode.

    Input: NCHW float32 images of `model.preprocessing["image_size"]` pixels, already
    normalised as hsnet_jax's `normalize` ((pixels - 127.5) / 128). Output: logits over
    `model.class_names`.
    """
    with open(sidecar_path(path)) as f:
        info = json.load(f)
    model = HSNet(len(info["class_names"]), **info["architecture"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.class_names, model.preprocessing = info["class_names"], info["preprocessing"]
    return model.eval()


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
