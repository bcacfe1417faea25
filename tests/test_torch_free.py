"""The documented face paths (docs/datasets.md, docs/evaluation.md) run where torch is not
installed: `prepare --dataset rafd|kdef` and `predict --detect_face`, in subprocesses whose
`import torch` (and facenet_pytorch, torchvision) fails, as on a fresh accelerator machine with only jax."""

import json
import os
import subprocess
import sys

import pytest
import skimage.data
from PIL import Image

from hsnet_jax.data import CANONICAL_EXPRESSIONS
from tests import data_trees
from tests.handmade_run import make_run


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    shim = tmp_path_factory.mktemp("no_torch")
    for name in ("torch", "torchvision", "facenet_pytorch"):
        os.makedirs(shim / name)
        (shim / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed (test shim)')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), os.getcwd(), env.get("PYTHONPATH", "")])
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "torch is not installed (test shim)" in probe.stderr
    return env


@pytest.mark.slow
def test_prepare_rafd_and_kdef_without_torch(env, tmp_path):
    for dataset, write in (("rafd", data_trees.rafd), ("kdef", data_trees.kdef)):
        manual = str(tmp_path / dataset)
        write(manual, **({"subjects": (1, 2, 3)} if dataset == "rafd" else {"people": ("F01", "F02", "M01")}))
        result = subprocess.run([sys.executable, "-m", "hsnet_jax.prepare", "--dataset", dataset,
                                 "--manual_dir", manual, "--data_dir", str(tmp_path / "data")],
                                env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "train" in result.stdout


@pytest.mark.slow
def test_predict_detect_face_without_torch(env, tmp_path):
    workdir = str(tmp_path / "run")
    make_run(workdir, dataset="synthetic/small", data_dir=str(tmp_path / "data"),
             class_names=list(CANONICAL_EXPRESSIONS), answer="happiness")
    photo = str(tmp_path / "astronaut.jpg")
    Image.fromarray(skimage.data.astronaut()).save(photo)
    result = subprocess.run([sys.executable, "-m", "hsnet_jax.predict", "--workdir", workdir, "--detect_face",
                             "--json", photo], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    face, = json.loads(result.stdout)[0]["faces"]
    assert face["prediction"] == "happiness" and len(face["box"]) == 4
