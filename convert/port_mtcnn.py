"""Ports facenet-pytorch's MTCNN weights (P-Net, R-Net, O-Net) to the file the package ships.

    python convert/port_mtcnn.py                       # from the installed facenet-pytorch
    python convert/port_mtcnn.py --weights_dir DIR --output hsnet_jax/assets/mtcnn.npz

facenet-pytorch 2.6.0 carries `data/pnet.pt`, `rnet.pt` and `onet.pt` in its wheel (the MTCNN
of Zhang et al. 2016, converted by facenet-pytorch from davidsandberg/facenet). Each file is
read with `torch.load(weights_only=True)` (`port_stem.read_state_dict`: never runs code) and
must hold exactly the tensors of the Flax network of `hsnet_jax.models.mtcnn` (checked by
name and shape). Conv2d OIHW -> HWIO, Linear (out, in) -> Dense (in, out), PReLU as is. The
output is one uncompressed `.npz` of float32 arrays keyed `pnet/conv1/kernel`; face detection
(`hsnet_jax.faces.detect`) reads it without torch. `tests/test_mtcnn.py` re-converts and checks that
every array of the shipped file is identical.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # run as a script from a checkout: make `hsnet_jax` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np

from convert.port_stem import read_state_dict
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import mtcnn

# The input each network's shapes are read off (any valid size works for these).
INPUT_SIDES = {"pnet": 12, "rnet": 24, "onet": 48}
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hsnet_jax", "assets",
                       mtcnn.WEIGHTS_FILE)


def facenet_weights_dir() -> str:
    """facenet-pytorch's bundled `data/` folder."""
    import facenet_pytorch

    return os.path.join(os.path.dirname(facenet_pytorch.__file__), "data")


def flax_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """"conv1/kernel" -> shape, for every parameter of the Flax network `net`."""
    side = INPUT_SIDES[net]
    shapes = jax.eval_shape(mtcnn.NETWORKS[net]().init, jax.random.key(0), np.zeros((1, side, side, 3), np.float32))
    flat = jax.tree_util.tree_flatten_with_path(shapes["params"])[0]
    return {"/".join(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def convert(state_dict: dict, net: str, source: str) -> dict[str, np.ndarray]:
    """One network's state dict -> {"net/module/leaf": float32 array in Flax layout}."""
    want = flax_shapes(net)
    arrays = {}
    for key, tensor in state_dict.items():
        module, leaf = key.rsplit(".", 1)
        value = tensor.detach().cpu().float().numpy()
        if value.ndim == 4:  # Conv2d OIHW -> HWIO
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:  # Linear (out, in) -> Dense (in, out)
            value = value.T
        name = {"weight": "weight" if module.startswith("prelu") else "kernel", "bias": "bias"}.get(leaf, leaf)
        arrays[f"{module}/{name}"] = np.ascontiguousarray(value, np.float32)
    got = {k: v.shape for k, v in arrays.items()}
    if got != want:
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])
        raise HSNetError(f"{source} is not facenet-pytorch's {net}: missing {missing}, unexpected {extra}, "
                         f"wrong shape {wrong}")
    return {f"{net}/{k}": arrays[k] for k in sorted(arrays)}


def port(weights_dir: str) -> dict[str, np.ndarray]:
    """All three networks, read from `weights_dir`/{pnet,rnet,onet}.pt."""
    arrays = {}
    for net in mtcnn.NETWORKS:
        path = os.path.join(weights_dir, f"{net}.pt")
        arrays.update(convert(read_state_dict(path), net, path))
    return arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights_dir", help="the folder of pnet.pt, rnet.pt, onet.pt "
                                              "(default: the installed facenet-pytorch's data/)")
    parser.add_argument("--output", default=SHIPPED, help="the .npz to write (default: the shipped file)")
    args = parser.parse_args(argv)
    try:
        arrays = port(args.weights_dir or facenet_weights_dir())
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.savez(args.output, **arrays)
    print(f"wrote {args.output}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
