"""convert/port_stem.py: a real facenet-pytorch network ported, checked against PyTorch, and
every kind of bad weights file refused with one line and no code run."""

import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1 as TorchInceptionResnetV1

from convert import port_stem
from hsnet_jax.models import pretrained
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import HSNet, InceptionResnetV1, Stem, normalize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "convert", "port_stem.py")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def facenet():
    """facenet's network with random BatchNorm statistics and affine parameters, so a mix-up
    of scale/bias/mean/var or a wrong kernel layout cannot cancel out."""
    torch.manual_seed(0)
    model = TorchInceptionResnetV1().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def weights(facenet, tmp_path_factory):
    """A state dict laid out like 20180402-114759-vggface2.pt: with the identity classifier."""
    state = facenet.state_dict()
    state["logits.weight"] = torch.randn(8631, 512)
    state["logits.bias"] = torch.randn(8631)
    path = tmp_path_factory.mktemp("weights") / "vggface2-like.pt"
    torch.save(state, path)
    return str(path)


def _pixels(size=96, seed=0):
    return np.asarray(normalize(np.random.default_rng(seed).uniform(0, 255, (2, size, size, 3))))


def _torch_stem(model, x):
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        for name in port_stem.TORCH_STEM:
            t = getattr(model, name)(t)
    return t.numpy().transpose(0, 2, 3, 1)


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.slow
def test_python_port_matches_facenet(facenet, weights, tmp_path):
    summary = port_stem.port(weights, str(tmp_path), full=True)
    assert summary["paths"] == [str(tmp_path / "stem"), str(tmp_path / "inception_resnet_v1")]
    assert summary["parameters"] == 23_482_624
    assert {"logits.weight", "logits.bias"} <= set(summary["skipped"])

    x = _pixels()
    stem = pretrained.load_stem_variables(str(tmp_path))
    got = jax.jit(lambda v, x: Stem().apply(v, x, train=False))(stem, x)
    assert _max_diff(got, _torch_stem(facenet, x)) <= TOLERANCE

    full = pretrained.load_inception_resnet_v1_variables(str(tmp_path))
    got = jax.jit(lambda v, x: InceptionResnetV1().apply(v, x, train=False))(full, x)
    with torch.no_grad():
        want = facenet(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert _max_diff(got, want) <= TOLERANCE
    assert np.allclose(np.linalg.norm(np.asarray(got), axis=-1), 1, atol=1e-5)


def test_stem_only_and_load_into_hsnet(weights, tmp_path):
    summary = port_stem.port(weights, str(tmp_path))
    assert summary["tensors"] == 30 and summary["parameters"] == 615_552
    assert not (tmp_path / "inception_resnet_v1").exists()
    with pytest.raises(HSNetError, match="--full"):
        pretrained.load_inception_resnet_v1_variables(str(tmp_path))

    shapes = jax.eval_shape(lambda x: HSNet(7).init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct((1, 75, 75, 3), np.float32))
    variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    loaded = pretrained.load_stem_into(variables, str(tmp_path))
    stem = pretrained.load_stem_variables(str(tmp_path))
    for c in ("params", "batch_stats"):
        assert jax.tree.all(jax.tree.map(np.array_equal, loaded[c]["stem"], stem[c]))
        assert loaded[c]["body"] is variables[c]["body"]
    kernel = np.asarray(stem["params"]["conv2d_1a"]["conv"]["kernel"])
    assert kernel.shape == (3, 3, 3, 32) and np.abs(kernel).max() > 0

    with pytest.raises(HSNetError, match="already exists; pass --force"):
        port_stem.port(weights, str(tmp_path))
    port_stem.port(weights, str(tmp_path), overwrite=True)


def _run(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_cli_full_verify(weights, tmp_path):
    out = tmp_path / "vggface2"
    result = _run("--weights", weights, "--output", str(out), "--full", "--verify")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    verified = {line.split(" [")[0]: float(line.split("max |diff| ")[1].split()[0])
                for line in lines if line.startswith("verify ")}
    assert set(verified) == {"verify stem features", "verify embeddings"}
    assert max(verified.values()) <= TOLERANCE
    assert f"wrote {out / 'stem'}: 30 tensors, 615,552 parameters" in result.stdout
    assert f"wrote {out / 'inception_resnet_v1'}: 602 tensors, 23,482,624 parameters" in (
        result.stdout)
    assert ("skipped the face-identity classifier: logits.weight (8631, 512), "
            "logits.bias (8631,)") in result.stdout
    assert "skipped 112 BatchNorm num_batches_tracked counters" in result.stdout


class _Payload:
    """A pickle that creates `marker` when unpickled: what a malicious weights file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _bad_files(facenet, directory):
    """{case: (path, text the error must contain)} for every kind of bad weights file."""
    state = facenet.state_dict()
    cases = {}

    def save(name, obj, expect, raw=False):
        path = os.path.join(directory, name)
        if raw:
            with open(path, "wb") as f:
                pickle.dump(obj, f)
        else:
            torch.save(obj, path)
        cases[name] = (path, expect)

    missing = {k: v for k, v in state.items()
               if k not in ("conv2d_1a.conv.weight", "repeat_2.3.conv2d.bias")}
    save("missing.pt", missing, "missing 2: conv2d_1a.conv.weight, repeat_2.3.conv2d.bias")
    save("unexpected.pt", {**state, "head.weight": torch.zeros(3)}, "unexpected 1: head.weight")
    save("shape.pt", {**state, "conv2d_4a.conv.weight": torch.zeros(192, 80, 5, 5)},
         "conv2d_4a.conv.weight is (192, 80, 5, 5), expected (192, 80, 3, 3)")
    save("integer.pt", {**state, "last_bn.weight": torch.zeros(512, dtype=torch.int64)},
         "not floating point: last_bn.weight")
    save("checkpoint.pt", {"state_dict": state, "epoch": 3},
         "not a state dict of name -> tensor: state_dict, epoch")
    save("list.pt", [state["last_bn.weight"]], "holds a list, not a state dict")
    save("int_keys.pt", {0: state["last_bn.weight"]}, "not a state dict of name -> tensor: 0")
    save("module.pt", facenet,
         "would import facenet_pytorch.models.inception_resnet_v1.InceptionResnetV1")
    marker = os.path.join(directory, "MARKER")
    save("malicious.pt", {"conv2d_1a.conv.weight": _Payload(marker)}, "refused")
    save("malicious_raw.pkl", _Payload(marker), "refused", raw=True)
    text = os.path.join(directory, "notes.txt")
    with open(text, "w") as f:
        f.write("not weights\n")
    cases["notes.txt"] = (text, "is not a PyTorch weights file (neither")
    cases["absent.pt"] = (os.path.join(directory, "absent.pt"), "absent.pt: no such file")
    return cases, marker


@pytest.fixture(scope="module")
def bad_files(facenet, tmp_path_factory):
    return _bad_files(facenet, str(tmp_path_factory.mktemp("bad")))


CASES = ["missing.pt", "unexpected.pt", "shape.pt", "integer.pt", "checkpoint.pt", "list.pt",
         "int_keys.pt", "module.pt", "malicious.pt", "malicious_raw.pkl", "notes.txt", "absent.pt"]


@pytest.mark.parametrize("case", CASES)
def test_main_refuses_bad_weights(case, bad_files, tmp_path, capsys):
    (path, expect), marker = bad_files[0][case], bad_files[1]
    assert port_stem.main(["--weights", path, "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expect in err, err
    assert not os.path.exists(marker)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["malicious.pt", "missing.pt"])
def test_cli_refuses_bad_weights_without_traceback(case, bad_files, tmp_path):
    (path, expect), marker = bad_files[0][case], bad_files[1]
    result = _run("--weights", path, "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert expect in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(marker)


def test_the_malicious_payload_is_live(bad_files):
    """The refusal above matters: unpickled without weights_only, the file runs its code."""
    (path, _), marker = bad_files[0]["malicious.pt"], bad_files[1]
    assert not os.path.exists(marker)
    torch.load(path, weights_only=False)
    assert os.path.exists(marker)
    os.remove(marker)


def test_pretrained_offline_names_the_url_and_weights_option(tmp_path):
    # A proxy on a closed local port makes "offline" certain even on a machine with internet.
    env = {**os.environ, "TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = _run("--pretrained", "vggface2", "--output", str(tmp_path / "out"), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()[-1:]
    assert line.startswith("error: cannot download " + port_stem.PRETRAINED_URLS["vggface2"])
    assert "--weights FILE" in line
