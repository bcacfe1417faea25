"""`hsnet_jax.predict` on real photographs (skimage's astronaut, a group photo of seven faces, a
phone photo stored sideways; MTCNN in JAX), a broken file, a picture without a face, one too
small for detection and a missing file, with a run directory whose network always answers
happiness (tests/handmade_run.py), so the printed probabilities are known."""

import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from hsnet_jax import predict
from hsnet_jax.faces import annotate
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.faces.crops import detect_faces
from tests import photos
from tests.handmade_run import answer_probabilities

HAPPINESS = CANONICAL_EXPRESSIONS.index("happiness")



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    names = ("astronaut.jpg", "broken.jpg", "noise.png", "missing.jpg", "tiny.png", "group.png", "sideways.jpg")
    paths = {name: str(root / name) for name in names}
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut.jpg"], quality=90)
    with open(paths["broken.jpg"], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)  # no face in it
    Image.fromarray(noise).save(paths["noise.png"])
    Image.fromarray(noise[:15, :15]).save(paths["tiny.png"])
    Image.fromarray(photos.group_photo()).save(paths["group.png"])
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned clockwise: rotate 90 degrees counter-clockwise to view
    Image.fromarray(np.rot90(skimage.data.astronaut()[:, :400], -1)).save(paths["sideways.jpg"], quality=95, exif=exif)
    return paths


def test_detect_face_json_predicts_the_photo_and_names_each_failure(run, files, capsys):
    order = ("astronaut.jpg", "broken.jpg", "noise.png", "missing.jpg", "tiny.png")
    assert predict.main(["--workdir", run, "--detect_face", "--json", *(files[k] for k in order)]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["file"] for r in results] == [files[k] for k in order]
    astronaut, broken, noise, missing, tiny = results
    face, = astronaut["faces"]
    assert face["prediction"] == "happiness"
    assert list(face["probabilities"]) == list(CANONICAL_EXPRESSIONS)
    np.testing.assert_allclose(list(face["probabilities"].values()), answer_probabilities(7, HAPPINESS), rtol=1e-6)
    x0, y0, x1, y1 = face["box"]
    assert 160 < x0 < 200 and 250 < x1 < 290 and 40 < y0 < 90 and 150 < y1 < 200
    assert broken["error"].startswith(f"{files['broken.jpg']}: cannot read the image")
    assert noise["error"] == f"{files['noise.png']}: no face found"
    assert missing["error"].startswith(f"{files['missing.jpg']}: cannot read the image")
    assert tiny["error"] == (f"{files['tiny.png']}: 15x15 pixels is too small for face detection "
                             f"(MTCNN needs at least 20 on each side)")
    assert captured.err.splitlines() == [f"error: {r['error']}" for r in (broken, noise, missing, tiny)]


@pytest.mark.slow
def test_every_face_of_a_group_photo_one_row_each_and_an_annotated_copy(run, files, tmp_path, capsys):
    out = str(tmp_path / "annotated")
    assert predict.main(["--workdir", run, "--detect_face", "--annotate", out, files["group.png"],
                         files["sideways.jpg"]]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["image", "face", "box", "prediction", *CANONICAL_EXPRESSIONS]
    assert [row.split()[:2] for row in rows] == [[files["group.png"], str(n)] for n in range(1, 8)] + \
        [[files["sideways.jpg"], "1"]]
    boxes = [[float(v) for v in row.split()[2].split(",")] for row in rows[:7]]
    areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes]
    assert areas == sorted(areas, reverse=True)  # largest face first
    # The sideways photo's face is boxed in the upright picture's coordinates.
    upright = skimage.data.astronaut()[:, :400]
    want = detect_faces([upright])[0].boxes[0]
    np.testing.assert_allclose([float(v) for v in rows[7].split()[2].split(",")], want, atol=3)
    for name, shape in (("group.png", (600, 900, 3)), ("sideways.jpg", (512, 400, 3))):
        picture = np.asarray(Image.open(f"{out}/{name}").convert("RGB"))
        assert picture.shape == shape
    picture = np.asarray(Image.open(f"{out}/group.png"))
    for x0, y0, x1, y1 in boxes:  # each box is outlined (its left side: labels sit above boxes)
        assert (picture[round(y0):round(y1), round(x0)] == annotate.BOX_COLOUR).all(-1).mean() > 0.5
    assert predict.main(["--workdir", run, "--detect_face", "--largest_face", "--json", files["group.png"]]) == 0
    largest, = json.loads(capsys.readouterr().out)
    assert largest["box"] == [round(v, 2) for v in boxes[0]] or np.allclose(largest["box"], boxes[0], atol=1)
    assert largest["prediction"] == "happiness"


@pytest.mark.parametrize("side", [200, 4000])
def test_labels_are_readable_on_small_and_large_photos(side):
    image = np.full((side * 3 // 4, side, 3), 40, np.uint8)
    box = (side * 0.3, side * 0.25, side * 0.6, side * 0.6)
    picture = np.asarray(annotate.draw(image, [(box, "happiness 0.93")]))
    band = (picture == annotate.BOX_COLOUR).all(-1)
    label_rows = np.flatnonzero(band[:int(box[1])].any(1))  # the label band above the box
    # The label sits above the box, about side/40 pixels high (at least 11), with dark text in it.
    assert max(11, side / 40) * 0.7 <= len(label_rows) <= max(11, side / 40) * 2
    label = picture[label_rows[0]:label_rows[-1], round(box[0]):round(box[2])]
    assert (label.astype(int).sum(-1) < 300).mean() > 0.05  # dark (anti-aliased) glyphs


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
