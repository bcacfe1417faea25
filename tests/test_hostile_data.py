"""Careless and hostile database trees (issue 24), each built by the test: only regular files
are read, Ctrl-C ends preparation at the first press."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import data_trees
from hsnet_jax.data import prepare_dataset
from hsnet_jax.data.errors import CorruptImageError, LabelError, LayoutError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unblock_later(fifo: str, seconds: float = 30.0) -> threading.Thread:
    """Opens `fifo` for writing after `seconds`: a reader blocked on it gets end-of-file, so a
    regression fails the test instead of hanging it."""
    def writer():
        time.sleep(seconds)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader: nothing blocked
            pass
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def test_a_fifo_in_a_tree_is_one_corrupt_line_never_a_hang(tmp_path):
    data_trees.image_folder(str(tmp_path / "pets"))
    fifo = str(tmp_path / "pets" / "train" / "cat" / "cat9.jpg")
    os.mkfifo(fifo)
    unblock_later(fifo)
    start = time.monotonic()
    with pytest.raises(CorruptImageError) as e:
        prepare_dataset("image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "pets"))
    assert "\n" not in str(e.value) and f"{fifo} (not a regular file (a FIFO))" in str(e.value)
    assert time.monotonic() - start < 30


def test_ctrl_c_ends_decoding_at_the_first_press(tmp_path):
    big = str(tmp_path / "noise.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), np.uint8)).save(big)
    fifo = str(tmp_path / "fifo.jpg")
    os.mkfifo(fifo)
    unblock_later(fifo, 60)
    process = subprocess.Popen([sys.executable, "-m", "tests.programs.decode_many", fifo, big, "5000"], cwd=ROOT,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    seen = ""
    while "decoding starts" not in seen:  # then a second for the pool to be decoding
        line = process.stderr.read(1)
        assert line, "the program ended before decoding"
        seen += line
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        process.wait(timeout=20)  # the queued decodes take minutes
    finally:
        process.kill()
    rest = process.stderr.read()
    assert time.monotonic() - start < 20 and process.returncode == 128 + signal.SIGINT, rest
    assert "interrupted (Ctrl-C)" in rest and "Traceback" not in rest


def test_a_raf_db_label_file_with_a_latin1_byte_is_one_line(tmp_path):
    data_trees.raf_db(str(tmp_path / "raf"), train_per_class=2, test_per_class=1)
    label_file = tmp_path / "raf" / "basic" / "EmoLabel" / "list_patition_label.txt"
    label_file.write_bytes(label_file.read_bytes() + b"train_caf\xe9.jpg 1\n")
    with pytest.raises(LabelError) as e:
        prepare_dataset("raf_db", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "raf"))
    assert "\n" not in str(e.value) and "not UTF-8 text (byte 0xE9 at column 10)" in str(e.value)


def test_symlinked_class_folders_and_files_are_followed_and_a_loop_is_one_line(tmp_path):
    data_trees.image_folder(str(tmp_path / "pets"))
    os.rename(tmp_path / "pets" / "train" / "dog", tmp_path / "dogs")
    os.symlink(tmp_path / "dogs", tmp_path / "pets" / "train" / "dog")
    os.rename(tmp_path / "pets" / "test" / "cat" / "cat0.jpg", tmp_path / "cat0.jpg")
    os.symlink(tmp_path / "cat0.jpg", tmp_path / "pets" / "test" / "cat" / "cat0.jpg")
    summary = prepare_dataset("image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "pets"))
    assert summary["class_counts"] == {"train": [3, 2], "test": [1, 2]}
    os.symlink(tmp_path / "pets" / "train", tmp_path / "pets" / "train" / "cat" / "loop")
    with pytest.raises(LayoutError) as e:
        prepare_dataset("image_folder", data_dir=str(tmp_path / "data2"), manual_dir=str(tmp_path / "pets"))
    assert "\n" not in str(e.value) and "symlink loop" in str(e.value)


def test_a_symlinked_raf_db_aligned_folder_is_followed(tmp_path):
    data_trees.raf_db(str(tmp_path / "raf"), train_per_class=2, test_per_class=1)
    aligned = tmp_path / "raf" / "basic" / "Image" / "aligned"
    os.rename(aligned, tmp_path / "aligned")
    os.symlink(tmp_path / "aligned", aligned)
    summary = prepare_dataset("raf_db", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "raf"))
    assert sum(map(sum, summary["class_counts"].values())) == 7 * 3


def test_prepare_checks_the_pixel_limit_from_the_header(tmp_path):
    from tests.test_hostile import declaring
    data_trees.image_folder(str(tmp_path / "pets"))
    bomb = declaring(tmp_path / "pets" / "train" / "cat" / "cat9.jpg", 13000, 13000)
    with pytest.raises(CorruptImageError) as e:
        prepare_dataset("image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "pets"))
    assert f"{bomb} (13000x13000 is 169.0 megapixels, over the limit of 50)" in str(e.value)


def test_full_size_decoding_is_chunked_by_pixels_not_count():
    from hsnet_jax.data.reading import CHUNK_PIXELS, TRANSFORM_CHUNK, pixel_chunks
    phone = 12_000_000
    assert pixel_chunks([phone] * 3) == [[0], [1], [2]]
    assert pixel_chunks([60_000_000, 100, 100]) == [[0], [1, 2]]  # over the budget: alone
    thumbs = pixel_chunks([64 * 64] * 40)
    assert [len(c) for c in thumbs] == [TRANSFORM_CHUNK, TRANSFORM_CHUNK, 40 - 2 * TRANSFORM_CHUNK]
    assert sum(map(len, pixel_chunks([CHUNK_PIXELS // 3] * 7))) == 7 and len(pixel_chunks([CHUNK_PIXELS // 3] * 7)) == 3


def test_a_jpeg_cut_short_is_corrupt_even_ending_with_an_end_marker(tmp_path):
    import skimage.data
    data_trees.image_folder(str(tmp_path / "pets"))
    whole = tmp_path / "whole.jpg"
    Image.fromarray(skimage.data.astronaut()).save(whole, quality=90)
    data = whole.read_bytes()
    cut = tmp_path / "pets" / "train" / "cat" / "cat9.jpg"
    cut.write_bytes(data[:len(data) * 6 // 10] + b"\xff\xd9")  # decodes with its bottom 40% grey
    (tmp_path / "pets" / "train" / "cat" / "cat8.jpg").write_bytes(data)  # the same, whole: kept
    summary = prepare_dataset("image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "pets"),
                              skip_corrupt=True)
    assert [os.path.basename(p) for p in summary["skipped_corrupt"]] == ["cat9.jpg"]
    assert summary["class_counts"]["train"] == [4, 2]
