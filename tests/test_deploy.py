"""Deploying a run (issue 21): convert/export_model.py's directory against the JAX model and
`predict --detect_face`, in the real runtimes.

- hsnet.onnx (ONNX Runtime) vs the run's JAX forward path on real face crops: logits within 1e-4
  relative; hsnet.int8.onnx's agreement with it and both test accuracies in model.json;
- MTCNN through the ONNX sessions vs the Flax networks: the same faces, boxes within 1e-3 px;
- hsnet_jax.deploy in a venv of numpy, Pillow, onnxruntime (and jax for the other test, never
  imported by deploy): the JSON of `predict --json --detect_face`;
- hsnet.jaxexport reloaded in that venv (no flax, orbax, torch or model code): the model's outputs;
- bad export directories and outputs: one line naming what is wrong (fast, no export needed).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from convert import mtcnn_onnx
from hsnet_jax import deploy
from hsnet_jax.inference import deployment
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from tests import photos
from tests.handmade_run import make_run
from tests.minimal_venv import make_venv

PHOTOS = {"astronaut.jpg": skimage.data.astronaut, "group.png": photos.group_photo,
          "grace_hopper.png": photos.grace_hopper}


def _fake_export(directory) -> str:
    """A directory shaped like an export (real MTCNN graphs, a stand-in hsnet.onnx) with a
    correct model.json: each bad-input test breaks one thing of it."""
    os.makedirs(directory)
    mtcnn_onnx.write_all(str(directory))
    (directory / "hsnet.onnx").write_bytes(b"stand-in")
    card = dict(format_version=deployment.FORMAT_VERSION, class_names=["a", "b"], input=dict(stored_size=100),
                files={n: deployment.sha256(str(directory / n)) for n in os.listdir(directory)})
    (directory / "model.json").write_text(json.dumps(card))
    return str(directory)


def test_bad_export_directories_get_one_line(tmp_path, capsys):
    photo = str(tmp_path / "photo.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(photo)
    good = _fake_export(tmp_path / "good")
    assert deployment.read_card(good)["class_names"] == ["a", "b"]

    def broken(name, damage):
        directory = tmp_path / name
        shutil.copytree(good, directory)
        damage(directory)
        return str(directory)

    def newer(d):
        card = json.loads((d / "model.json").read_text())
        (d / "model.json").write_text(json.dumps(dict(card, format_version=deployment.FORMAT_VERSION + 1)))

    cases = {
        str(tmp_path): "not an hsnet export (no model.json",
        str(tmp_path / "nowhere"): "not a directory",
        broken("missing", lambda d: os.remove(d / "mtcnn_rnet.onnx")): "mtcnn_rnet.onnx is missing",
        broken("changed", lambda d: (d / "hsnet.onnx").write_bytes(b"changed")): "hsnet.onnx: SHA-256 differs",
        broken("newer", newer): f"format {deployment.FORMAT_VERSION + 1} is newer than this hsnet-jax reads",
        broken("garbled", lambda d: (d / "model.json").write_text("{")): "model.json: not a model card",
    }
    for directory, message in cases.items():
        assert deploy.main([directory, photo]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, (message, err)


def test_export_refuses_a_non_empty_output(tmp_path, capsys):
    from convert import export_model

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert export_model.main(["--workdir", str(tmp_path / "run"), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: {tmp_path / 'out'}: exists and is not empty (pass --overwrite to replace its files)"
    assert os.listdir(tmp_path / "out") == ["keep.txt"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data_dir):
    """A run of random weights and BatchNorm statistics (logits that differ per face), its
    export with --int8, the run loaded in JAX, and photo files."""
    from convert.export_model import export
    from convert.torch_hsnet import HSNet, randomize_, to_flax
    from hsnet_jax.data import prepare_dataset
    from hsnet_jax.inference.evaluation import load_run

    root = tmp_path_factory.mktemp("deploy")
    prepare_dataset("synthetic/small", data_dir=data_dir)  # the int8 accuracy reads its test split
    workdir = str(root / "run")
    make_run(workdir, dataset="synthetic/small", data_dir=data_dir, class_names=list(CANONICAL_EXPRESSIONS),
             answer="happiness", variables=to_flax(randomize_(HSNet(7, use_fgal=False))))
    card = export(workdir, str(root / "out"), int8=True)
    paths = []
    for name, load in PHOTOS.items():
        paths.append(str(root / name))
        Image.fromarray(load()).save(paths[-1])
    return dict(workdir=workdir, out=str(root / "out"), card=card, photos=paths, root=root, run=load_run(workdir))


@pytest.mark.slow
def test_onnx_logits_equal_the_jax_models_and_int8_is_reported(exported):
    from hsnet_jax.faces.crops import detect_faces
    from hsnet_jax.faces.answers import read_photo
    from hsnet_jax.faces.crop_rule import crop_box

    images = [read_photo(p) for p in exported["photos"]]
    crops = np.stack([crop_box(image, box, 100) for image, faces in zip(images, detect_faces(images))
                      for box in faces.boxes])
    assert len(crops) == 9  # 1 + 7 + 1 real faces
    want = exported["run"].predict(crops)
    got = deployment.Deployment(exported["out"]).logits(crops)
    relative = np.abs(got - want).max() / np.abs(want).max()
    print(f"ONNX vs JAX logits: max relative difference {relative:.2e}")
    assert relative <= 1e-4 and np.ptp(want[:, 0]) > 1e-2  # the faces' logits do differ
    int8 = exported["card"]["int8"]
    print(f"int8: test accuracy {int8['test_accuracy']:.4f} vs float {int8['float_test_accuracy']:.4f}, "
          f"agreement {int8['agreement']:.4f} on {int8['test_examples']} images")
    assert int8["test_examples"] > 0 and 0 <= int8["agreement"] <= 1
    card = json.load(open(os.path.join(exported["out"], "model.json")))
    assert set(card["files"]) == {*deployment.FILES, deployment.INT8_FILE, "hsnet.jaxexport"}
    assert card["class_names"] == list(CANONICAL_EXPRESSIONS) and card["input"]["stored_size"] == 100


@pytest.mark.slow
def test_mtcnn_through_onnx_finds_the_jax_faces(exported):
    from hsnet_jax.faces.crops import detect_faces

    images = [np.asarray(Image.open(p).convert("RGB")) for p in exported["photos"]]
    ours, theirs = detect_faces(images), deployment.Deployment(exported["out"]).detector.detect(images)
    worst = 0.0
    for a, b in zip(ours, theirs):
        assert len(a) == len(b) > 0
        worst = max(worst, float(np.abs(a.boxes - b.boxes).max()), float(np.abs(a.landmarks - b.landmarks).max()))
    print(f"MTCNN ONNX vs JAX: largest box/landmark difference {worst:.2e} px")
    assert worst <= 1e-3


@pytest.fixture(scope="module")
def slim_python(tmp_path_factory):
    """A venv of numpy, Pillow, onnxruntime and jax only (no flax, orbax, optax, torch, TFDS)."""
    python = make_venv(str(tmp_path_factory.mktemp("venv") / "slim"), ["numpy", "pillow", "onnxruntime", "jax"])
    missing = subprocess.run([python, "-c", "import flax"], capture_output=True, text=True)
    assert "No module named 'flax'" in missing.stderr
    return python


@pytest.mark.slow
def test_deploy_in_a_slim_venv_prints_predicts_json(exported, slim_python):
    from hsnet_jax.inference.prediction import predict_files

    env = dict(os.environ, PYTHONPATH=os.getcwd())
    check = ("import json, sys; from hsnet_jax import deploy; code = deploy.main(sys.argv[1:]); "
             "assert not {'jax', 'flax', 'torch'} & set(sys.modules), sorted(sys.modules); sys.exit(code)")
    result = subprocess.run([slim_python, "-c", check, exported["out"], *exported["photos"], "--json"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    got, want = json.loads(result.stdout), predict_files(exported["workdir"], exported["photos"], detect_face=True)
    assert [len(r["faces"]) for r in got] == [1, 7, 1]
    for g, w in zip(got, want):
        assert g["file"] == w["file"]
        for a, b in zip(g["faces"], w["faces"], strict=True):
            assert a["box"] == b["box"] and a["prediction"] == b["prediction"]
            np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()),
                                       rtol=0, atol=1e-6)


@pytest.mark.slow
def test_jax_export_reloads_without_flax(exported, slim_python):
    crops = np.random.default_rng(0).integers(0, 256, (3, 100, 100, 3), dtype=np.uint8)
    np.save(exported["root"] / "crops.npy", crops)
    load = ("import sys, jax, numpy as np; exp = jax.export.deserialize(open(sys.argv[1], 'rb').read()); "
            "p, logits = exp.call(np.load(sys.argv[2])); np.save(sys.argv[3], np.asarray(logits)); "
            "assert not {'flax', 'orbax', 'hsnet_jax', 'torch'} & set(m.split('.')[0] for m in sys.modules)")
    result = subprocess.run([slim_python, "-c", load, os.path.join(exported["out"], "hsnet.jaxexport"),
                             str(exported["root"] / "crops.npy"), str(exported["root"] / "logits.npy")],
                            env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    got, want = np.load(exported["root"] / "logits.npy"), exported["run"].predict(crops)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


NO_JAX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "no_jax")


@pytest.mark.slow
def test_serve_runs_an_export_without_jax_and_answers_as_deploy(exported, tmp_path):
    from benchmarks.serve import Server, multipart, request, webcam_frame

    env = dict(os.environ, PYTHONPATH=NO_JAX)
    blocked = subprocess.run([sys.executable, "-c", "import jax"], env=env, capture_output=True, text=True)
    assert "jax is blocked in this process" in blocked.stderr  # the server below runs without jax
    frame = webcam_frame()
    (tmp_path / "frame.jpg").write_bytes(frame)
    want = deployment.Deployment(exported["out"]).predict_files([str(tmp_path / "frame.jpg")], max_side=1024)[0]
    log = str(tmp_path / "serve.log")
    with Server(exported["out"], env=env, log=log, export=True) as server:
        status, _, body = request(server.port, "POST", "/predict", *multipart("frame.jpg", frame))
        model = json.loads(request(server.port, "GET", "/model")[2])
    with open(log) as f:
        assert "loaded and warmed" in f.read()
    assert status == 200, body
    got = json.loads(body)
    assert got["file"] == "frame.jpg" and len(got["faces"]) == len(want["faces"]) == 1
    for a, b in zip(got["faces"], want["faces"]):
        assert a["box"] == b["box"] and a["prediction"] == b["prediction"]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6)
    assert model["source"] == "export" and model["classes"] == exported["card"]["class_names"]
    assert model["crop_size"] == exported["card"]["input"]["stored_size"] and model["weights"] == "float32"
