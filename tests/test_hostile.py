"""Careless and hostile inputs (issue 24), each built by the test: nothing a user passed in is
modified, nothing read that is not a regular file, every malformed workdir one line."""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hsnet_jax import predict
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.errors import HSNetError
from tests.handmade_run import make_run
from tests.test_hostile_data import unblock_later



def photo(path, side=80, seed=0) -> str:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), np.uint8)).save(path)
    return str(path)


def refused(argv, *words):
    with pytest.raises(HSNetError) as e:
        predict.main(argv)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_annotate_refuses_a_folder_holding_an_input_and_taken_names_before_any_work(tmp_path):
    a = photo(tmp_path / "a.png")
    before = open(a, "rb").read()
    missing_run = str(tmp_path / "no-run")  # never read: the refusal comes first
    refused(["--workdir", missing_run, "--annotate", str(tmp_path), a], "holds the input")
    refused(["--workdir", missing_run, "--annotate", str(tmp_path) + "/.", a], "holds the input")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    refused(["--workdir", missing_run, "--annotate", str(out), a], "exists", "--overwrite")
    os.chmod(out, 0o500)
    try:
        if not os.access(out, os.W_OK):  # root writes anywhere
            refused(["--workdir", missing_run, "--annotate", str(out), "--overwrite", a], "not a writable folder")
    finally:
        os.chmod(out, 0o700)
    assert (out / "a.png").read_bytes() == b"keep me" and open(a, "rb").read() == before


def test_a_planted_symlink_is_replaced_never_followed(run, tmp_path):
    a = photo(tmp_path / "a.png")
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "a.png")
    refused(["--workdir", run, "--annotate", str(out), a], "exists")
    assert predict.main(["--workdir", run, "--annotate", str(out), "--overwrite", a]) == 0
    assert outside.read_bytes() == b"precious" and not os.path.islink(out / "a.png")
    assert Image.open(out / "a.png").size == (80, 80)


def test_a_fifo_among_the_photos_is_one_line_and_the_others_are_predicted(run, tmp_path, capsys):
    a = photo(tmp_path / "a.png")
    fifo = str(tmp_path / "b.jpg")
    os.mkfifo(fifo)
    unblock_later(fifo)
    assert predict.main(["--workdir", run, "--json", fifo, a]) == 1
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert err == f"error: {fifo}: cannot read the image (not a regular file (a FIFO))\n"
    assert results[1]["prediction"] == "happiness"


def workdir_with(tmp_path, run, content: bytes) -> str:
    workdir = tmp_path / "edited"
    shutil.copytree(run, workdir)
    (workdir / "config.json").write_bytes(content)
    return str(workdir)


def edited_config(run, key, value) -> bytes:
    config = json.load(open(os.path.join(run, "config.json")))
    config[key] = value
    return json.dumps(config).encode()


@pytest.mark.parametrize("key, value, words", [
    ("image_size", -5, "must be positive"), ("image_size", "abc", "image_size"), ("image_size", 4000, "at most 1024"),
    ("image_size", 16, "at least 75"), ("image_size", None, "must be an integer"),
    ("eval_batch_size", 0, "must be positive"), ("eval_batch_size", -1, "must be positive"),
    ("eval_batch_size", 1e12, "eval_batch_size"), ("eval_batch_size", 10 ** 12, "at most 65536")])
def test_an_edited_run_config_is_one_line(run, tmp_path, key, value, words):
    a = photo(tmp_path / "a.png")
    refused(["--workdir", workdir_with(tmp_path, run, edited_config(run, key, value)), a], "config.json", words)


@pytest.mark.parametrize("content, words", [(b"[]", "does not hold a run config"),
                                            (b"null", "does not hold a run config"),
                                            (b'{"dataset": "raf_db\xe9"}', "not UTF-8 text (byte 0xE9"),
                                            (b'{"dataset": "raf_db", "model": 3}', "config.json")])
def test_a_damaged_config_json_is_one_line(run, tmp_path, content, words):
    a = photo(tmp_path / "a.png")
    refused(["--workdir", workdir_with(tmp_path, run, content), a], words)


def test_checkpoint_metadata_edited_to_another_class_count_is_one_line(run, tmp_path):
    workdir = workdir_with(tmp_path, run, open(os.path.join(run, "config.json"), "rb").read())
    [meta] = [p for p in glob.glob(os.path.join(workdir, "checkpoints", "**", "*"), recursive=True)
              if os.path.isfile(p) and b'"class_names"' in open(p, "rb").read()]
    stored = json.load(open(meta))
    stored["class_names"], stored["num_classes"] = stored["class_names"][:6], 6
    with open(meta, "w") as f:
        json.dump(stored, f)
    refused(["--workdir", workdir, photo(tmp_path / "a.png")], "do not fit", "classifier")


def test_non_finite_probabilities_are_an_error_never_printed(tmp_path, capsys):
    workdir = str(tmp_path / "nan-run")
    make_run(workdir, dataset="synthetic/small", data_dir=str(tmp_path / "data"),
             class_names=list(CANONICAL_EXPRESSIONS), answer="happiness", logit=float("inf"))
    refused(["--workdir", workdir, "--json", photo(tmp_path / "a.png")], "not finite")
    assert "NaN" not in capsys.readouterr().out


def declaring(path, width: int, height: int) -> str:
    """A JPEG of a few hundred bytes whose header declares width x height (a decompression bomb)."""
    import io
    data = io.BytesIO()
    Image.new("RGB", (8, 8)).save(data, "JPEG")
    raw = bytearray(data.getvalue())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(raw))
    return str(path)


def test_a_pixel_limit_from_the_header_before_decoding(run, tmp_path, capsys):
    bomb = declaring(tmp_path / "bomb.jpg", 13000, 13000)
    assert os.path.getsize(bomb) < 1000
    a = photo(tmp_path / "a.png")
    assert predict.main(["--workdir", run, "--detect_face", "--json", bomb, a]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {bomb}: cannot read the image (13000x13000 is 169.0 megapixels, over the limit "
                          "of 50; --max_pixels raises the limit)") and err.count("\n") == 2  # and a's "no face"
    assert [set(r) for r in json.loads(out)] == [{"file", "error"}, {"file", "error"}]
    assert predict.main(["--workdir", run, "--max_pixels", "100", a]) == 1
    assert "over the limit of 0.0001" in capsys.readouterr().err


def test_sixteen_bit_images_are_converted_without_float64():
    import tracemalloc

    from hsnet_jax.data.reading import to_rgb
    image = Image.fromarray(np.random.default_rng(0).integers(0, 65536, (1000, 1000), dtype=np.uint16))
    image.load()
    tracemalloc.start()
    try:
        rgb = np.asarray(to_rgb(image))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1000 * 1000  # one float64 copy alone is 8 bytes a pixel
    np.testing.assert_array_equal(rgb[..., 0], np.round(np.asarray(image) / 257.0).astype(np.uint8))


def peak_rss_mb(argv) -> float:
    """The high-water RSS of `argv` run in a fresh child of a fresh interpreter (so no other
    child's peak counts), in MB."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True,
                         env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return int(out.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_predict_memory_is_flat_in_the_number_of_large_photos(run, tmp_path):
    gradient = np.linspace(0, 255, 4000, dtype=np.float32)
    big = (gradient[None, :, None] * np.ones((3000, 1, 3), np.float32)).astype(np.uint8)
    paths = []
    for n in range(12):  # 12 megapixels each, 36 MB decoded
        paths.append(str(tmp_path / f"big{n}.jpg"))
        Image.fromarray(np.roll(big, n * 100, axis=1)).save(paths[-1], quality=80)
    command = [sys.executable, "-m", "hsnet_jax.predict", "--workdir", run, "--json"]
    # From two photos on (the first chunk's decoding and compilation do not overlap): measured
    # 618-623 MB for 2 photos, 641-683 MB for 8 (allocator noise); keeping every decoded photo
    # would add 10 x 36 MB for 12.
    few, many = peak_rss_mb(command + paths[:2]), peak_rss_mb(command + paths)
    assert many - few < 160, (few, many)
