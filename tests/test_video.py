"""`predict --video` on clips built from real photos (tests/clips.py): faces crossing, leaving
and coming back, a sideways phone clip with rotation metadata and a variable frame rate, a
truncated file, files that are not videos; the rows checked against `predict --detect_face`
on the same frames, the annotated copy decoded back, flat memory over thousands of frames. The
network of the run always answers happiness (tests/handmade_run.py)."""

import csv
import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from hsnet_jax import predict
from hsnet_jax.faces import annotate
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.faces.crops import detect_faces
from hsnet_jax.faces.tracking import MAX_MISSED, REDETECT, REFIND_GAP_S, Tracker, iou
from hsnet_jax.inference.prediction import predict_files
from hsnet_jax.inference.video import Cadence, Model, Smoother, TruncatedVideo, predict_video
from hsnet_jax.runtime import cli
from tests import clips
from tests.handmade_run import answer_probabilities

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HAPPINESS = CANONICAL_EXPRESSIONS.index("happiness")
EXPECTED = answer_probabilities(7, HAPPINESS)



@pytest.fixture(scope="module")
def model(run):
    return Model(run)


@pytest.fixture(scope="module")
def crossing(run, tmp_path_factory):
    """The crossing clip through the command: table, annotated copy and timeline."""
    root = tmp_path_factory.mktemp("crossing")
    clip, table, annotated = str(root / "crossing.mp4"), str(root / "table.csv"), str(root / "annotated.mp4")
    frames = clips.crossing()
    clips.write(clip, frames)
    status = predict.main(["--workdir", run, "--video", clip, "--output", table, "--annotate", annotated,
                           "--smooth", "0.2"])
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    return dict(status=status, clip=clip, frames=frames, rows=rows, table=table, annotated=annotated, root=root)


def decode(path: str) -> tuple[list[np.ndarray], list[float], av.video.stream.VideoStream]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), f.time) for f in container.decode(stream)]
        return [f for f, _ in frames], [t for _, t in frames], stream


def boxes_of(rows, frame):
    return {int(r["face_id"]): [float(v) for v in r["box"].split(",")] for r in rows if int(r["frame"]) == frame}


def test_tracker_keeps_ids_through_a_crossing_a_miss_and_closes_after_the_tolerance():
    tracker = Tracker()
    a, b = np.array([0, 40, 40, 80.0]), np.array([200, 40, 240, 80.0])
    step = np.array([10, 0, 10, 0.0])
    ids = [tracker.update([a + k * step, b - k * step]) for k in range(6)]
    assert ids == [[1, 2]] * 6
    # The two boxes meet and pass: at k=10 they coincide; one is hidden for a few frames.
    for k in range(6, 14):
        shown = [b - k * step] if 8 <= k <= 12 else [a + k * step, b - k * step]
        got = tracker.update(shown)
        assert got == ([2] if len(shown) == 1 else [1, 2]), k
    # Gone for MAX_MISSED frames: kept; for one more: a new id.
    for _ in range(MAX_MISSED):
        tracker.update([])
    assert tracker.update([a + 14 * step + MAX_MISSED * step]) == [1]
    for _ in range(MAX_MISSED + 1):
        tracker.update([])
    assert tracker.update([a + 20 * step]) == [3]


def test_whole_frames_every_redetect_frames_and_after_a_long_gap():
    whole = Cadence(5)
    assert [k for k in range(12) if whole(k / 25)] == [0, 5, 10]
    # A pause (a variable frame rate, or --every on a slow clip): the frame after it is searched whole.
    whole = Cadence(5)
    times = [0.0, 0.04, 0.08, 0.08 + REFIND_GAP_S + 0.01, 0.4, 0.44, 0.48, 0.52, 0.56]
    assert [t for t in times if whole(t)] == [0.0, times[3], 0.56]
    assert all(Cadence(1)(t) for t in times)


def test_smoothing_is_the_tracks_mean_over_the_last_seconds():
    smooth = Smoother(0.5)
    p = np.eye(3)
    assert np.allclose(smooth(1, 0.0, p[0]), p[0])
    assert np.allclose(smooth(1, 0.25, p[1]), [0.5, 0.5, 0])
    assert np.allclose(smooth(2, 0.25, p[2]), p[2])  # another track: its own window
    assert np.allclose(smooth(1, 0.5, p[2]), [0, 0.5, 0.5])  # frame 0 is 0.5 s old: out
    assert np.allclose(smooth(1, 2.0, p[0]), p[0])


def test_crossing_faces_keep_their_ids_in_table_video_and_timeline(crossing):
    assert crossing["status"] == 0
    rows = crossing["rows"]
    assert list(rows[0]) == ["video", "frame", "time_s", "face_id", "box", "prediction", *CANONICAL_EXPRESSIONS,
                             *(f"smooth_{c}" for c in CANONICAL_EXPRESSIONS)]
    # Face 1 is Grace Hopper (lower, moving left), face 2 the astronaut (higher, moving right),
    # hidden behind Hopper for a few frames of the crossing and still face 2 afterwards.
    by_id = {face: [r for r in rows if r["face_id"] == str(face)] for face in (1, 2)}
    assert {r["face_id"] for r in rows} == {"1", "2"}
    assert len(by_id[1]) == 16 and 8 <= len(by_id[2]) < 16
    xs = {face: [float(r["box"].split(",")[0]) for r in by_id[face]] for face in (1, 2)}
    assert np.all(np.diff(xs[1]) < 0) and np.all(np.diff(xs[2]) > 0)
    assert all(float(r["box"].split(",")[1]) > 35 for r in by_id[1])
    assert all(float(r["box"].split(",")[1]) < 30 for r in by_id[2])
    assert xs[2][-1] > max(xs[1][0] - 60, 120)  # the astronaut came out on Hopper's side
    assert [float(r["time_s"]) for r in by_id[1]] == pytest.approx([k / 25 for k in range(16)])
    for r in rows:
        assert r["prediction"] == "happiness"
        np.testing.assert_allclose([float(r[c]) for c in CANONICAL_EXPRESSIONS], EXPECTED, atol=1e-6)
        np.testing.assert_allclose([float(r[f"smooth_{c}"]) for c in CANONICAL_EXPRESSIONS], EXPECTED, atol=1e-6)

    # The annotated copy: H.264, same size, frame count and times; boxes drawn where the table says.
    pictures, times, stream = decode(crossing["annotated"])
    assert stream.codec_context.name == "h264" and stream.average_rate == 25
    assert len(pictures) == 16 and pictures[0].shape == (160, 240, 3)
    assert times == pytest.approx([k / 25 for k in range(16)], abs=1e-3)
    for k in (0, 15):
        for x0, y0, x1, y1 in boxes_of(rows, k).values():
            edge = np.s_[round(y0) + 2:round(y1) - 2, int(x0):int(x0) + 2]  # the box's left side, 1 pixel wide
            drawn, source = (np.abs(p[edge].astype(int) - annotate.BOX_COLOUR).sum(-1).min(1).mean()
                             for p in (pictures[k], crossing["frames"][k]))
            assert drawn < source - 100  # much nearer the box colour than the frame was (4:2:0 blurs it)
        untouched = np.s_[140:, :]  # below every box and label
        assert np.abs(pictures[k][untouched].astype(int) - crossing["frames"][k][untouched]).mean() < 4

    # One timeline beside the table: both tracks, the happiness band (red in tab10) fills ~90%.
    timeline = np.asarray(Image.open(os.path.join(crossing["root"], "crossing_timeline.png")).convert("RGB"))
    red = (np.abs(timeline.astype(int) - (214, 39, 40)).max(-1) < 10).mean()
    assert 0.2 < red < 0.8


@pytest.mark.slow
def test_rows_are_what_predict_detect_face_says_of_the_same_frames(run, model, crossing, tmp_path):
    """With --redetect 1 every frame's faces are predict's to the digit; by default the frames
    detected whole (0, 5, 10, 15) are, and the frames between, whose faces are re-found near
    their tracks, have the same faces, the boxes a few pixels apart (MTCNN's final box depends on
    which candidates reach O-Net)."""
    pictures, _, _ = decode(crossing["clip"])
    paths = []
    for k, picture in enumerate(pictures):
        paths.append(str(tmp_path / f"frame{k:02d}.png"))
        Image.fromarray(picture).save(paths[-1])
    photos = predict_files(run, paths, detect_face=True)
    every_frame = predict_video(model, crossing["clip"], redetect=1, progress=False)
    by_default = [{**r, "box": [float(v) for v in r["box"].split(",")]} for r in crossing["rows"]]
    for k, photo in enumerate(photos):
        theirs = sorted(face["box"] for face in photo["faces"])
        assert sorted(r["box"] for r in every_frame if r["frame"] == k) == theirs
        ours = [r for r in by_default if int(r["frame"]) == k]
        if k % REDETECT == 0:
            assert sorted(r["box"] for r in ours) == theirs
        else:
            assert len(ours) == len(theirs)  # IoU > 0.6: 0.71 for the astronaut re-emerging in frame 13
            assert iou(np.array([r["box"] for r in ours]), np.array(theirs)).max(1).min() > 0.6
        for face in photo["faces"]:
            row = next(r for r in every_frame if r["frame"] == k and r["box"] == face["box"])
            assert row["prediction"] == face["prediction"]
            np.testing.assert_allclose([row[c] for c in CANONICAL_EXPRESSIONS],
                                       list(face["probabilities"].values()), atol=1e-6)
        assert {r["prediction"] for r in ours} <= {"happiness"}


@pytest.mark.slow
def test_phone_clip_upright_with_variable_frame_rate_every_other_frame(model, tmp_path):
    upright = clips.panning()
    times = [0.0, 0.05, 0.07, 0.2, 0.3, 0.31, 0.5, 0.55, 0.6, 0.9, 1.0, 1.02, 1.1, 1.3, 1.35, 1.4]
    clip = str(tmp_path / "phone.mp4")
    clips.write(clip, [np.ascontiguousarray(np.rot90(f, 1)) for f in upright], rotation=-90, times=times)
    out = str(tmp_path / "phone_annotated.mp4")
    rows = predict_video(model, clip, every=2, annotate=out)
    assert [r["frame"] for r in rows] == list(range(0, 16, 2))
    assert [r["time_s"] for r in rows] == pytest.approx(times[::2])
    assert {r["face_id"] for r in rows} == {1}
    want = detect_faces(upright[::2])
    for r, faces in zip(rows, want):
        np.testing.assert_allclose(r["box"], faces.boxes[0], atol=3)
    pictures, got_times, _ = decode(out)  # every frame, upright, at its own time
    assert len(pictures) == 16 and pictures[0].shape == (160, 240, 3)
    assert got_times == pytest.approx(times, abs=1e-3)


@pytest.mark.slow
def test_a_face_that_leaves_comes_back_with_a_new_id_a_missed_frame_does_not(model, tmp_path):
    clip = str(tmp_path / "leaving.mp4")
    clips.write(clip, clips.leaving())
    ids = {r["frame"]: r["face_id"] for r in predict_video(model, clip, redetect=1, progress=False)}
    assert ids == {**{k: 1 for k in (0, 1, 2, 4, 5)}, **{k: 2 for k in (13, 14, 15)}}
    # By default the whole frame is searched every REDETECT frames: the face that is back in
    # frame 13 is found in frame 15 (frames 13 and 14 look only where open tracks are).
    assert REDETECT == 5
    ids = {r["frame"]: r["face_id"] for r in predict_video(model, clip, progress=False)}
    assert ids == {**{k: 1 for k in (0, 1, 2, 4, 5)}, 15: 2}


@pytest.mark.slow
def test_truncated_video_keeps_its_decodable_part_then_one_error(run, model, tmp_path, capsys):
    whole, cut = str(tmp_path / "whole.mkv"), str(tmp_path / "cut.mkv")
    clips.write(whole, clips.crossing())
    data = open(whole, "rb").read()
    with open(cut, "wb") as f:
        f.write(data[:len(data) * 6 // 10])
    table = str(tmp_path / "cut.jsonl")
    assert predict.main(["--workdir", run, "--video", cut, "--output", table]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cut}: truncated")
    rows = [json.loads(line) for line in open(table)]
    frames = sorted({r["frame"] for r in rows})
    assert 3 <= len(frames) < 16 and frames == list(range(len(frames)))
    assert rows[0]["box"] == pytest.approx(predict_video(model, whole)[0]["box"])
    with pytest.raises(TruncatedVideo) as caught:
        predict_video(model, cut)
    assert len(caught.value.rows) == len(rows)
    assert sorted(os.listdir(tmp_path)) == ["cut.jsonl", "cut.mkv", "cut_timeline.png", "whole.mkv"]


def test_bad_input_one_line_each_nothing_half_written(run, tmp_path, capsys):
    text, picture, empty = str(tmp_path / "notes.mp4"), str(tmp_path / "still.mp4"), str(tmp_path / "empty.mp4")
    with open(text, "w") as f:
        f.write("not a video\n" * 100)
    Image.fromarray(clips.astronaut_face(64)).save(picture, format="PNG")  # an image named .mp4
    clips.write(empty, [clips.canvas(240, 160, k) for k in range(16)])  # no face in it
    out = str(tmp_path / "out")
    os.makedirs(out)
    table = os.path.join(out, "table.csv")
    assert predict.main(["--workdir", run, "--video", text, picture, empty, "--output", table]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err] == [text, picture, empty]
    assert err[0].startswith(f"error: {text}: cannot read the video")
    assert err[1] == f"error: {picture}: not a video (no video stream)"
    assert err[2] == f"error: {empty}: no face found"
    assert open(table).read().splitlines() == [",".join(["video", "frame", "time_s", "face_id", "box", "prediction",
                                                         *CANONICAL_EXPRESSIONS])]
    assert sorted(os.listdir(out)) == ["empty_timeline.png", "table.csv"]  # no temporary file left
    # Unwritable outputs, and two videos whose outputs would collide, are found before any work.
    for flag, target in (("--output", os.path.join(table, "t.csv")), ("--annotate", os.path.join(table, "a.mp4"))):
        assert cli.run(predict.main, ["--workdir", run, "--video", empty, flag, target]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: cannot write {target}")
    assert cli.run(predict.main, ["--workdir", run, "--video", empty, empty, "--output", table]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: two videos share a name; their annotated copies and "
                                                    "timelines would collide: empty"]
    for flags, message in ((["--every", "0"], "--every 0: must be at least 1"),
                           (["--smooth", "-1"], "--smooth -1.0: must be a positive number of seconds"),
                           (["--redetect", "0"], "--redetect 0: must be at least 1")):
        assert cli.run(predict.main, ["--workdir", run, "--video", empty, "--output", table, *flags]) == 1
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"error: {message}"] and captured.out == ""
    assert sorted(os.listdir(out)) == ["empty_timeline.png", "table.csv"]


@pytest.mark.slow
def test_memory_stays_flat_over_thousands_of_frames(run, tmp_path, env):
    result = subprocess.run([sys.executable, "-m", "tests.programs.video_memory", run, str(tmp_path)],
                            capture_output=True, text=True, env=dict(env, PYTHONPATH=ROOT), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    short, long = (float(v) for v in result.stdout.split())
    # 2,000 more frames of 160x96 held would be 92 MB (decoded RGB); measured: +6 MB.
    assert long - short < 30, (short, long)
