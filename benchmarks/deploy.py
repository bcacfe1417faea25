"""Deployment speed on this machine: the HSNet of the RAF-DB config (100 px crops stored, 224 px
model input, DIB + FGAL) in JAX, ONNX Runtime float and int8, and whole photos with face
detection through `hsnet_jax.deploy` against the JAX path of `predict --detect_face`.

  python -m benchmarks.deploy [--repeats 5] [--photos 8] [--commands]

Builds a throwaway run with random weights (tests/handmade_run.py: the trainer's config and
checkpoint format) and exports it with convert/export_model.py --int8. Prints one JSON object:
- `*_batch1_ms_per_face`: median latency of one face crop [1, 100, 100, 3] -> probabilities
  (JAX: the exported `hsnet.jaxexport`, the model's own program, at exactly that batch size);
- `*_batch32_faces_per_s`: throughput at batch 32; medians over `repeats` runs taken in turn
  (JAX, ONNX float, ONNX int8, JAX, ...), after one untimed run each (JAX compiles there);
- `photos_per_s_deploy` / `photos_per_s_jax`: `photos` photos (group, astronaut, Grace Hopper
  in turn) read, detected, cropped and answered, models loaded and compiled beforehand:
  `Deployment.predict_files` (ONNX Runtime) against `hsnet_jax.faces.answers` with the JAX
  detector and the run's `load_run` forward (what `predict_files` runs after loading; it pads
  the faces to the config's `eval_batch_size`, 64 here);
- with `--commands`: seconds of `python -m hsnet_jax.deploy DIR PHOTOS` and
  `python -m hsnet_jax.predict --workdir RUN --detect_face PHOTOS` as a user runs them once
  (imports, loading and, for predict, XLA compilation included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import onnxruntime
import skimage.data
from PIL import Image

from convert.export_model import JAX_FILE, export
from hsnet_jax.inference import deployment as deploy_lib
from hsnet_jax.data import CANONICAL_EXPRESSIONS
from hsnet_jax.faces.crops import detect_faces
from hsnet_jax.inference.evaluation import load_run
from hsnet_jax.faces import answers
from tests import photos
from tests.handmade_run import make_run

RAF_INPUT = 224  # configs/raf.py's image_size (base_config)
STORED = 100  # RAF-DB's stored crops


def _median_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_models(workdir: str, out: str, repeats: int) -> dict[str, float]:
    crops = np.random.default_rng(0).integers(0, 256, (32, STORED, STORED, 3), dtype=np.uint8)
    with open(os.path.join(out, JAX_FILE), "rb") as f:  # the model at exactly this batch size
        exported = jax.export.deserialize(f.read())
    sessions = {name: onnxruntime.InferenceSession(os.path.join(out, file), providers=["CPUExecutionProvider"])
                for name, file in (("onnx_float", deploy_lib.FILES[0]), ("onnx_int8", deploy_lib.INT8_FILE))}
    runners = {"jax": lambda x: np.asarray(exported.call(x)[0]),
               **{name: (lambda x, s=s: s.run(["probabilities"], {"images": x})[0]) for name, s in sessions.items()}}
    result = {}
    for batch in (1, 32):
        x = crops[:batch]
        for fn in runners.values():
            fn(x)  # compile / warm up
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeats):
            for name, fn in runners.items():
                times[name].append(_median_time(lambda: fn(x), 1))
        for name, t in times.items():
            m = statistics.median(t)
            result[f"{name}_batch1_ms_per_face" if batch == 1 else f"{name}_batch32_faces_per_s"] = \
                round(1000 * m, 1) if batch == 1 else round(batch / m, 1)
    return result


def time_photos(workdir: str, out: str, paths: list[str], repeats: int) -> dict[str, float]:
    deployment, run = deploy_lib.Deployment(out), load_run(workdir)

    def with_jax():
        results = [{"file": p} for p in paths]
        faces = answers.find_faces(paths, answers.read_photos(paths, results), STORED, False, None, results,
                                   detect_faces)
        answers.answer(results, faces, run.predict(np.stack([c for i in faces for _, c in faces[i]])),
                       run.class_names, True, False)

    runners = {"deploy": lambda: deployment.predict_files(paths), "jax": with_jax}
    for fn in runners.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            times[name].append(_median_time(fn, 1))
    return {f"photos_per_s_{name}": round(len(paths) / statistics.median(t), 2) for name, t in times.items()}


def time_commands(workdir: str, out: str, paths: list[str]) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    commands = {"deploy": [sys.executable, "-m", "hsnet_jax.deploy", out, *paths],
                "predict": [sys.executable, "-m", "hsnet_jax.predict", "--workdir", workdir, "--detect_face", *paths]}
    result = {}
    for name, command in commands.items():
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        result[f"command_{name}_s"] = round(time.perf_counter() - start, 1)
    return result


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--commands", action="store_true", help="also time the two commands end to end")
    args = parser.parse_args(argv)
    result = {"cpu": cpu_name(), "cpu_count": os.cpu_count(),
              "load_average_start": round(os.getloadavg()[0], 1), "jax": jax.__version__,
              "onnxruntime": onnxruntime.__version__, "model_input": RAF_INPUT, "stored": STORED}
    with tempfile.TemporaryDirectory() as tmp:
        workdir, out = os.path.join(tmp, "run"), os.path.join(tmp, "export")
        make_run(workdir, dataset="synthetic/small", data_dir=os.path.join(tmp, "data"),
                 class_names=list(CANONICAL_EXPRESSIONS), answer="happiness", fgal=True, image_size=RAF_INPUT)
        export(workdir, out)
        deploy_int8 = os.path.join(out, deploy_lib.INT8_FILE)
        from convert.onnx_hsnet import quantize_int8

        quantize_int8(os.path.join(out, deploy_lib.FILES[0]), deploy_int8)
        loads = [(photos.group_photo, "group"), (skimage.data.astronaut, "astronaut"),
                 (photos.grace_hopper, "grace_hopper")]
        paths = []
        for k in range(args.photos):
            load, name = loads[k % len(loads)]
            paths.append(os.path.join(tmp, f"{name}_{k}.png"))
            Image.fromarray(load()).save(paths[-1])
        result.update(time_models(workdir, out, args.repeats))
        result.update(time_photos(workdir, out, paths, max(1, args.repeats // 2)))
        if args.commands:
            result.update(time_commands(workdir, out, paths))
    result["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
