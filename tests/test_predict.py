"""`hsnet_jax.predict` on a real photograph (skimage's astronaut, MTCNN from facenet-pytorch),
a broken file, a picture without a face and a missing file, with a run directory whose network
always answers happiness (tests/handmade_run.py), so the printed probabilities are known."""

import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from hsnet_jax import predict
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from tests.handmade_run import answer_probabilities, make_run

HAPPINESS = CANONICAL_EXPRESSIONS.index("happiness")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    # The generated set need not be prepared: predict reads only its stored image size.
    make_run(workdir, dataset="synthetic/small", data_dir=str(tmp_path_factory.mktemp("data")),
             class_names=list(CANONICAL_EXPRESSIONS), answer="happiness")
    return workdir


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    paths = {name: str(root / name) for name in ("astronaut.jpg", "broken.jpg", "noise.png", "missing.jpg")}
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut.jpg"], quality=90)
    with open(paths["broken.jpg"], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)  # no face in it
    Image.fromarray(noise).save(paths["noise.png"])
    return paths


def test_detect_face_json_predicts_the_photo_and_names_each_failure(run, files, capsys):
    argv = ["--workdir", run, "--detect_face", "--json",
            files["astronaut.jpg"], files["broken.jpg"], files["noise.png"], files["missing.jpg"]]
    assert predict.main(argv) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    order = ("astronaut.jpg", "broken.jpg", "noise.png", "missing.jpg")
    assert [r["file"] for r in results] == [files[k] for k in order]
    astronaut, broken, noise, missing = results
    assert astronaut["prediction"] == "happiness"
    assert list(astronaut["probabilities"]) == list(CANONICAL_EXPRESSIONS)
    np.testing.assert_allclose(list(astronaut["probabilities"].values()),
                               answer_probabilities(7, HAPPINESS), rtol=1e-6)
    assert broken["error"].startswith(f"{files['broken.jpg']}: cannot read the image")
    assert noise["error"] == f"{files['noise.png']}: no face found"
    assert missing["error"].startswith(f"{files['missing.jpg']}: cannot read the image")
    assert captured.err.splitlines() == [f"error: {r['error']}" for r in (broken, noise, missing)]


def test_table_without_face_detection(run, files, capsys):
    # Without --detect_face any readable picture is predicted, the faceless one too.
    assert predict.main(["--workdir", run, files["astronaut.jpg"], files["noise.png"]]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["image", "prediction", *CANONICAL_EXPRESSIONS]
    expected = answer_probabilities(7, HAPPINESS)
    for row, name in zip(rows, ("astronaut.jpg", "noise.png")):
        file, prediction, *probabilities = row.split()
        assert file == files[name] and prediction == "happiness"
        np.testing.assert_allclose([float(p) for p in probabilities], expected, atol=5e-5)
    assert len(rows) == 2


def test_only_failures_exit_non_zero_without_traceback(run, files):
    result = subprocess.run([sys.executable, "-m", "hsnet_jax.predict", "--workdir", run,
                             files["broken.jpg"], files["missing.jpg"]], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {files['broken.jpg']}: cannot read the image")
    assert lines[1].startswith(f"error: {files['missing.jpg']}: cannot read the image")
