"""Video speed: `predict --video`'s path beside predicting each frame as a photo, and its face
detection beside facenet-pytorch's MTCNN, on the same frames, in one run.

  python -m benchmarks.video [--frames 16] [--repeats 2]

Clips (tests/clips.py: real photos pasted on a moving background, H.264): 640x360 and
1280x720, with one and with four faces. The run is tests/handmade_run.py's (HSNet at 75 px,
the demo's input). For each clip, after one untimed pass of every path (compilation):
- video: `predict_video` on the clip as `predict --video` runs it (decode thread, whole-frame
  detection every REDETECT frames in batches, the frames between re-found near their tracks,
  batched classification, rows); frames/s of the whole call;
- video_every_frame: the same with `--redetect 1` (every frame detected whole, as a photo);
- photos: what `predict --detect_face` does per photo, frame after frame (PNG decode, MTCNN
  on one photo, crops, the network in predict's batches of eval_batch_size), the run loaded
  once;
- photos_batched: the same frames in one `predict --detect_face` call over all of them (every
  same-sized photo detected as one batch), the run loaded once: the best case for photos;
- detect_video: the video path's face finding alone on the decoded frames (`track_faces`:
  whole-frame detection every REDETECT frames, re-finding between, tracking);
- detect_jax / detect_facenet: whole-frame detection of every decoded frame in the video
  path's batches: the JAX MTCNN, and facenet-pytorch 2.6.0's `MTCNN.detect` on the same
  batches (torch on all cores, its default).
Paths alternate within each repeat so all see the same machine load; the median is printed.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import av
import jax
import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from hsnet_jax.faces import answers
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.faces.crops import detect_faces
from hsnet_jax.inference.evaluation import Run, load_run
from hsnet_jax.faces.tracking import REDETECT, Tracker
from hsnet_jax.inference.video import PIXELS_PER_BATCH, Cadence, Model, predict_video, track_faces
from hsnet_jax.inference.video_decode import Frame
from hsnet_jax.inference.metrics import softmax
from tests import clips
from tests.handmade_run import make_run

SIZES = ((640, 360), (1280, 720))
FACES = (1, 4)


def per_photo(run: Run, size: int, paths: list[str]) -> None:
    """`predict --detect_face` on each frame as its own photo (predict_files' steps, its run)."""
    for path in paths:
        results = [{"file": path}]
        faces = answers.find_faces([path], {0: answers.read_photo(path)}, size, False, None, results, detect_faces)
        crops = [crop for _, crop in faces.get(0, [])]
        if crops:
            softmax(run.predict(np.stack(crops)))


def all_photos(run: Run, size: int, paths: list[str]) -> None:
    """`predict --detect_face` over all frames in one call (one detection batch)."""
    photos = {i: answers.read_photo(p) for i, p in enumerate(paths)}
    results = [{"file": p} for p in paths]
    faces = answers.find_faces(paths, photos, size, False, None, results, detect_faces)
    crops = [crop for found in faces.values() for _, crop in found]
    softmax(run.predict(np.stack(crops)))


def batches(frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    h, w = frames[0].shape[:2]
    n = max(1, PIXELS_PER_BATCH // (w * h))
    return [frames[i:i + n] for i in range(0, len(frames), n)]


def tracked(chunks: list[list[np.ndarray]], rate: float) -> None:
    """The video path's face finding (`track_faces`) on the decoded frames, batch after batch."""
    tracker, whole, k = Tracker(), Cadence(REDETECT), 0
    for chunk in chunks:
        track_faces([Frame(k + i, (k + i) / rate, None, rgb, True) for i, rgb in enumerate(chunk)], tracker, whole,
                    None)
        k += len(chunk)


def bench_clip(model: Model, photo_run: Run, facenet: MTCNN, root: str, size: tuple[int, int], count: int, frames: int,
               repeats: int) -> dict:
    w, h = size
    clip = os.path.join(root, f"clip_{w}x{h}_{count}.mp4")
    clips.write(clip, clips.people(frames, w, h, count))
    with av.open(clip) as container:
        rate = float(container.streams.video[0].average_rate)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    paths = []
    for k, frame in enumerate(decoded):
        paths.append(os.path.join(root, f"{w}x{h}_{count}_{k:03d}.png"))
        Image.fromarray(frame).save(paths[-1], compress_level=1)
    chunks = batches(decoded)
    tasks = {
        "video": lambda: predict_video(model, clip, progress=False),
        "video_every_frame": lambda: predict_video(model, clip, progress=False, redetect=1),
        "photos": lambda: per_photo(photo_run, model.size, paths),
        "photos_batched": lambda: all_photos(photo_run, model.size, paths),
        "detect_video": lambda: tracked(chunks, rate),
        "detect_jax": lambda: [detect_faces(chunk) for chunk in chunks],
        "detect_facenet": lambda: [facenet.detect(np.stack(chunk)) for chunk in chunks],
    }
    rows = tasks["video"]()
    found = len(detect_faces(decoded[:1])[0])
    theirs = facenet.detect(decoded[0])[0]
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for name, task in tasks.items():  # compile / warm up
        task()
    for _ in range(repeats):
        for name, task in tasks.items():
            start = time.perf_counter()
            task()
            times[name].append(time.perf_counter() - start)
    fps = {name: round(frames / statistics.median(t), 2) for name, t in times.items()}
    return {"clip": f"{w}x{h}", "faces": count, "frames": frames, "rows": len(rows), "redetect": REDETECT,
            "faces_first_frame_jax": found, "faces_first_frame_facenet": 0 if theirs is None else len(theirs),
            "frames_per_s": fps,
            "video_over_photos": round(fps["video"] / fps["photos"], 2),
            "video_every_frame_over_photos": round(fps["video_every_frame"] / fps["photos"], 2),
            "video_over_photos_batched": round(fps["video"] / fps["photos_batched"], 2),
            "detect_video_over_facenet": round(fps["detect_video"] / fps["detect_facenet"], 2),
            "detect_jax_over_facenet": round(fps["detect_jax"] / fps["detect_facenet"], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_count": os.cpu_count(),
              "load_average_start": [round(v, 1) for v in os.getloadavg()], "jax": jax.__version__,
              "jax_device": str(jax.devices()[0]), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "av": av.__version__, "ffmpeg": av.ffmpeg_version_info, "clips": []}
    facenet = MTCNN(keep_all=True, device="cpu")
    with tempfile.TemporaryDirectory() as root:
        workdir = os.path.join(root, "run")
        make_run(workdir, dataset="synthetic/small", data_dir=os.path.join(root, "data"),
                 class_names=list(CANONICAL_EXPRESSIONS), answer="happiness")
        model, photo_run = Model(workdir), load_run(workdir)  # predict's run: its eval_batch_size
        for size in SIZES:
            for count in FACES:
                result["clips"].append(bench_clip(model, photo_run, facenet, root, size, count, args.frames,
                                                  args.repeats))
                print(json.dumps(result["clips"][-1]), flush=True)
    result["load_average_end"] = [round(v, 1) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
