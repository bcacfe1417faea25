"""MTCNN's networks in Flax (hsnet_jax/models/mtcnn.py) and the shipped weights: the file in the
package is exactly what convert/port_mtcnn.py makes of facenet-pytorch's pnet/rnet/onet.pt, and
each network computes what facenet's does with them."""

import jax
import numpy as np
import pytest
import torch
from facenet_pytorch.models.mtcnn import ONet as TorchONet
from facenet_pytorch.models.mtcnn import PNet as TorchPNet
from facenet_pytorch.models.mtcnn import RNet as TorchRNet

from convert import port_mtcnn
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import mtcnn


def test_shipped_weights_are_the_conversion_of_facenets_files(tmp_path):
    output = str(tmp_path / "mtcnn.npz")
    assert port_mtcnn.main(["--output", output]) == 0
    with np.load(output) as fresh, np.load(port_mtcnn.SHIPPED) as shipped:
        assert sorted(fresh.files) == sorted(shipped.files)
        assert len(shipped.files) == 50
        for key in shipped.files:
            assert shipped[key].dtype == np.float32 and np.array_equal(fresh[key], shipped[key]), key


def test_converter_refuses_a_file_that_is_not_the_network(tmp_path):
    torch.save({"conv1.weight": torch.zeros(10, 3, 3, 3)}, tmp_path / "pnet.pt")
    with pytest.raises(HSNetError, match=r"is not facenet-pytorch's pnet: missing \['conv1/bias'"):
        port_mtcnn.port(str(tmp_path))


@pytest.mark.parametrize("net, torch_net, shape", [
    ("pnet", TorchPNet, (2, 31, 46, 3)),  # odd sides: the ceil_mode pool keeps a partial window
    ("pnet", TorchPNet, (1, 301, 263, 3)),  # conv3 (145x127 outputs) runs in 3 strips on the CPU
    ("rnet", TorchRNet, (5, 24, 24, 3)),
    ("onet", TorchONet, (5, 48, 48, 3)),
])
def test_networks_match_facenet(net, torch_net, shape):
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        want = torch_net().eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    got = mtcnn.NETWORKS[net]().apply(mtcnn.load_variables()[net], x)
    if net == "pnet":  # facenet: (reg NCHW, softmax NCHW); here (reg NHWC, P(face) NHW)
        want = (want[0].numpy().transpose(0, 2, 3, 1), want[1].numpy()[:, 1])
    else:  # facenet's probabilities come last, as here, but as [N, 2]
        want = [w.numpy() for w in want[:-1]] + [want[-1].numpy()[:, 1]]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), w, atol=2e-5)


@pytest.mark.parametrize("shape, features, kernel", [
    ((2, 40, 33, 3), 10, 3),  # 27 taps x channels: multiplied and added on the CPU
    ((1, 147, 129, 16), 32, 3),  # 10.5 MB of patches: 3 strips of 57 rows, the last one padded
    ((3, 20, 20, 48), 64, 2),  # the plain convolution
])
def test_conv_equals_the_plain_convolution(shape, features, kernel):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    params = {"kernel": rng.normal(size=(kernel, kernel, shape[-1], features)).astype(np.float32),
              "bias": rng.normal(size=features).astype(np.float32)}
    got = mtcnn.Conv(features, kernel).apply({"params": params}, x)
    want = jax.lax.conv_general_dilated(x, params["kernel"], (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST) + params["bias"]
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_padded_pnet_input_gives_the_unpadded_cells():
    x = np.random.default_rng(1).uniform(-1, 1, (1, 29, 37, 3)).astype(np.float32)
    padded = np.zeros((1, 48, 48, 3), np.float32)
    padded[:, :29, :37] = x
    variables = mtcnn.load_variables()["pnet"]
    reg, probs = mtcnn.PNet().apply(variables, x)
    reg_p, probs_p = mtcnn.PNet().apply(variables, padded, np.array([29, 37]))
    h, w = probs.shape[1:]
    np.testing.assert_allclose(np.asarray(probs_p)[:, :h, :w], probs, atol=1e-6)
    np.testing.assert_allclose(np.asarray(reg_p)[:, :h, :w], reg, atol=1e-6)
