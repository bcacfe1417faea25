"""Ports facenet-pytorch's Inception-ResNet-v1 weights to orbax checkpoints for HSNet's KTL.

    python convert/port_stem.py --weights 20180402-114759-vggface2.pt --output DIR --verify
    python convert/port_stem.py --weights FILE --output DIR --full  # also the whole network
    python convert/port_stem.py --pretrained vggface2 --output DIR

writes DIR/stem (and with --full DIR/inception_resnet_v1), read back by `hsnet_jax.models.pretrained`.
The file is unpickled only with `weights_only=True` and must be exactly facenet-pytorch's
`InceptionResnetV1` state dict; the face-identity classifier `logits.*` and the BatchNorm
`num_batches_tracked` counters are skipped by name. The key mapping is mechanical:
`repeat_1.0.branch1.1.conv.weight` -> params `body/repeat_1_0/branch1_1/conv/kernel` (OIHW ->
HWIO), Linear weights are transposed, BatchNorm weight/bias/running_mean/running_var ->
params scale/bias and batch_stats mean/var.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import warnings
import zipfile

if __name__ == "__main__":  # run as a script from a checkout: make `hsnet_jax` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np
import torch
from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1 as TorchInceptionResnetV1
from facenet_pytorch.models.inception_resnet_v1 import get_torch_home
from facenet_pytorch.models.utils.download import download_url_to_file

from hsnet_jax.models import pretrained
from hsnet_jax.runtime import cli
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import InceptionResnetV1, Stem, normalize

# facenet-pytorch's release files (the URLs its own `load_weights` uses).
PRETRAINED_URLS = {
    "vggface2": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                "20180402-114759-vggface2.pt",
    "casia-webface": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                     "20180408-102900-casia-webface.pt",
}
# The classifier over the training identities (8631 for VGGFace2): not part of the embedding
# network, so it is skipped by name rather than ported.
CLASSIFIER_KEYS = ("logits.weight", "logits.bias")
# facenet's forward pass up to conv2d_4b: the stem HSNet takes over.
TORCH_STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
              "conv2d_4b")
VERIFY_TOLERANCE = 1e-4

Arrays = dict[str, np.ndarray]


def fetch_pretrained(name: str) -> str:
    """The path of facenet-pytorch's cached release file, downloaded by its own downloader."""
    url = PRETRAINED_URLS[name]
    path = os.path.join(get_torch_home(), "checkpoints", os.path.basename(url))
    if os.path.exists(path):
        print(f"using the cached {path}")
        return path
    print(f"downloading {url} -> {path}")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        download_url_to_file(url, path)
    except OSError as e:  # urllib's URLError is an OSError
        raise HSNetError(f"cannot download {url} ({getattr(e, 'reason', e)}); download it on a "
                         f"machine with internet and pass it with --weights FILE") from None
    return path


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Unpickles `path` with `weights_only=True` (never runs code) and checks it is a state dict."""
    if not os.path.isfile(path):
        raise HSNetError(f"{path}: no such file")
    with open(path, "rb") as f:  # torch.save writes a zip, or (before torch 1.6) a pickle
        if not (zipfile.is_zipfile(f) or f.seek(0) == 0 and f.read(1) == b"\x80"):
            raise HSNetError(f"{path} is not a PyTorch weights file (neither torch.save's zip "
                             f"format nor a pickle)")
    try:
        with warnings.catch_warnings():  # the weights-only unpickler warns on old protocols
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        why = (f"unpickling it would import {found.group(1)} and run code" if found else
               "it is not a weights-only pickle, so unpickling it could run code")
        raise HSNetError(f"{path} refused: {why}; only state dicts saved with "
                         f"torch.save(model.state_dict(), FILE) are read") from None
    except Exception as e:  # torch.load has no single error type for "not a torch file"
        message = " ".join(str(e).split())
        raise HSNetError(f"{path} is not a PyTorch weights file ({type(e).__name__}: "
                         f"{message})") from None
    if not isinstance(obj, dict):
        raise HSNetError(f"{path} holds a {type(obj).__name__}, not a state dict "
                         f"(save it with torch.save(model.state_dict(), FILE))")
    if bad := [repr(k) if not isinstance(k, str) else k for k, v in obj.items()
               if not (isinstance(k, str) and isinstance(v, torch.Tensor))]:
        raise HSNetError(f"{path} is not a state dict of name -> tensor: {', '.join(bad[:5])}"
                         + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""))
    return obj


def facenet_shapes() -> dict[str, jax.ShapeDtypeStruct]:
    """Every tensor facenet-pytorch's `InceptionResnetV1()` holds, from the module itself."""
    with torch.device("meta"):  # shapes only, no memory, no random init
        state = TorchInceptionResnetV1().state_dict()
    return {k: jax.ShapeDtypeStruct(tuple(v.shape), np.float32) for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


def check_facenet_state_dict(state_dict: dict[str, torch.Tensor], source: str
                             ) -> tuple[Arrays, dict[str, tuple[int, ...]]]:
    """The float32 arrays to port, keyed like facenet, and the shapes of the keys skipped on
    purpose (the identity classifier, the BatchNorm counters).

    Raises HSNetError naming every missing, unexpected, wrongly shaped or non-float tensor.
    """
    skipped = {k: tuple(v.shape) for k, v in state_dict.items()
               if k in CLASSIFIER_KEYS or k.endswith(".num_batches_tracked")}
    tensors = {k: v for k, v in state_dict.items() if k not in skipped}
    what = f"{source} is not a facenet-pytorch InceptionResnetV1 state dict"
    if not_float := [k for k, v in tensors.items() if not v.is_floating_point()]:
        raise HSNetError(f"{what}: not floating point: {', '.join(not_float[:5])}")
    arrays = {k: v.detach().to(torch.float32).numpy() for k, v in tensors.items()}
    pretrained.check_shapes(arrays, facenet_shapes(), what)
    return arrays, skipped


def flax_location(key: str, reference: pretrained.Variables) -> tuple[str, ...]:
    """(collection, *path) of a facenet key: `.N` -> `_N`; stem layers under "stem", the rest
    of the trunk under "body" (both read off the Flax model); BatchNorm weight -> scale."""
    *modules, leaf = key.split(".")
    names: list[str] = []
    for m in modules:
        if m.isdigit():
            names[-1] += f"_{m}"
        else:
            names.append(m)
    group = [g for g in ("stem", "body") if names[0] in reference["params"][g]]
    collection, name = {"weight": ("params", "kernel"), "bias": ("params", "bias"),
                        "running_mean": ("batch_stats", "mean"),
                        "running_var": ("batch_stats", "var")}[leaf]
    if key.endswith(".weight") and names[-1] in ("bn", "last_bn"):
        name = "scale"
    return (collection, *group, *names, name)


def to_flax(arrays: Arrays) -> pretrained.Variables:
    """facenet arrays -> `{"params", "batch_stats"}` of the Flax `InceptionResnetV1`."""
    reference = pretrained.reference_shapes(InceptionResnetV1())
    variables: pretrained.Variables = {c: {} for c in pretrained.COLLECTIONS}
    for key, value in arrays.items():
        collection, *path, name = flax_location(key, reference)
        node = variables[collection]
        for p in path:
            node = node.setdefault(p, {})
        if value.ndim == 4:  # Conv2d OIHW -> HWIO
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:  # Linear (out, in) -> Dense (in, out)
            value = value.T
        node[name] = np.ascontiguousarray(value)
    pretrained.check_shapes(variables, reference, "the mapped variables do not match the Flax "
                            "InceptionResnetV1 (a converter bug)")
    return variables


def _count(tree) -> tuple[int, int]:
    leaves = jax.tree.leaves(tree)
    return len(leaves), sum(int(np.size(x)) for x in leaves)


def verify(arrays: Arrays, output: str, full: bool, batch: int = 2, size: int = 160,
           seed: int = 0) -> dict[str, float]:
    """Max |difference| between facenet-pytorch (the same weights) and the written checkpoints.

    Both run in float32 with TF32 off on one random batch of `size` x `size` images; raises
    HSNetError when a difference exceeds VERIFY_TOLERANCE.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = TorchInceptionResnetV1().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    pixels = np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3))
    x = np.asarray(normalize(pixels))
    x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        stem = x_torch
        for name in TORCH_STEM:
            stem = getattr(model, name)(stem)
        outputs = {"stem features": (stem.numpy().transpose(0, 2, 3, 1),
                                     Stem(), pretrained.load_stem_variables(output))}
        if full:
            outputs["embeddings"] = (model(x_torch).numpy(), InceptionResnetV1(),
                                     pretrained.load_inception_resnet_v1_variables(output))
    diffs = {}
    with jax.default_matmul_precision("highest"):
        for what, (want, module, variables) in outputs.items():
            got = np.asarray(jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x))
            diffs[what] = float(np.max(np.abs(got - want)))
            print(f"verify {what} {list(want.shape)}: max |diff| {diffs[what]:.2e} "
                  f"(max |value| {np.max(np.abs(want)):.2f}, tolerance {VERIFY_TOLERANCE:.0e})")
    if failed := [w for w, d in diffs.items() if not d <= VERIFY_TOLERANCE]:
        raise HSNetError(f"verification failed: {', '.join(failed)} differ from facenet-pytorch "
                         f"by more than {VERIFY_TOLERANCE:.0e}")
    return diffs


def port(weights: str, output: str, full: bool = False, overwrite: bool = False,
         run_verify: bool = False) -> dict:
    """Reads, checks, maps and writes; prints progress and a summary.

    Returns {"paths", "tensors", "parameters", "skipped", "diffs"} (diffs empty unless
    `run_verify`).
    """
    print(f"reading {weights}")
    arrays, skipped = check_facenet_state_dict(read_state_dict(weights), weights)
    print(f"checked {len(arrays)} tensors against facenet-pytorch's InceptionResnetV1")
    variables = to_flax(arrays)
    stem = {c: variables[c]["stem"] for c in pretrained.COLLECTIONS}
    paths = pretrained.save_pretrained(output, stem, variables if full else None, overwrite)
    for path, tree in zip(paths, (stem, variables)):
        tensors, numbers = _count(tree)
        params = _count(tree["params"])[1]
        print(f"wrote {path}: {tensors} tensors, {params:,} parameters "
              f"+ {numbers - params:,} BatchNorm statistics")
    if not full:
        print(f"checked but not written (pass --full): {len(arrays) - _count(stem)[0]} tensors "
              f"of the body, last_linear and last_bn")
    if classifier := [f"{k} {skipped[k]}" for k in CLASSIFIER_KEYS if k in skipped]:
        print(f"skipped the face-identity classifier: {', '.join(classifier)}")
    if counters := [k for k in skipped if k.endswith("num_batches_tracked")]:
        print(f"skipped {len(counters)} BatchNorm num_batches_tracked counters")
    diffs = verify(arrays, output, full) if run_verify else {}
    ported = variables if full else stem
    return {"paths": paths, "tensors": _count(ported)[0], "parameters": _count(ported["params"])[1],
            "skipped": sorted(skipped), "diffs": diffs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", metavar="FILE",
                        help="a facenet-pytorch InceptionResnetV1 state dict (.pt)")
    source.add_argument("--pretrained", choices=sorted(PRETRAINED_URLS),
                        help="fetch facenet-pytorch's release file (needs internet)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="writes DIR/stem (and DIR/inception_resnet_v1 with --full)")
    parser.add_argument("--full", action="store_true",
                        help="also port the whole InceptionResnetV1 (face embeddings)")
    parser.add_argument("--verify", action="store_true",
                        help=f"compare with facenet-pytorch on a random batch "
                             f"(fails above {VERIFY_TOLERANCE:.0e})")
    parser.add_argument("--force", action="store_true", help="overwrite existing checkpoints")
    args = parser.parse_args(argv)
    try:
        weights = args.weights or fetch_pretrained(args.pretrained)
        port(weights, args.output, args.full, args.force, args.verify)
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
