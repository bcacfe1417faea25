"""`python -m hsnet_jax.serve (--workdir RUN | --export DIR) [--host 127.0.0.1] [--port 8000]`:
a local demo page and HTTP API for a trained run or an export of it (photos and the webcam).

`--workdir`: the run's checkpoint, loaded and compiled once (JAX). `--export`: a directory of
`convert/export_model.py`, checked and run with ONNX Runtime alone, as `hsnet_jax.deploy` runs
it (no jax imported; faster on a CPU, benchmarks/deploy.py). The model is warmed on the page's
webcam frame sizes and served by uvicorn: the page at /, `POST /predict` (a photo -> `predict --json --detect_face`'s
answer), `GET /model`, `GET /health` (hsnet_jax/serving/app.py). Concurrent requests are
detected and classified together (hsnet_jax/serving/batcher.py; `--max_batch 1` turns that
off). Only this machine can connect unless `--host` says otherwise (a warning line is printed).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from hsnet_jax.runtime import cli
from hsnet_jax.errors import HSNetError


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hsnet_jax.serving.app import Limits, create_app
    from hsnet_jax.serving.batcher import Batcher
    from hsnet_jax.serving.pipeline import Predictor

    if args.export:
        from hsnet_jax.serving.onnx_model import OnnxModel
        model = OnnxModel(args.export, args.int8)
    else:
        from hsnet_jax.serving.run_model import RunModel
        model = RunModel(args.workdir, args.which, args.max_batch)

    if not _loopback(args.host):
        print(f"warning: serving on {args.host}: other machines can reach this server (it has no "
              "authentication); the default --host 127.0.0.1 keeps it to this one", file=sys.stderr, flush=True)
    predictor = Predictor(model, args.max_side or None)
    seconds = predictor.warm()
    batcher = Batcher(predictor.predict, args.max_batch, args.batch_window_ms / 1000, args.queue)
    limits = Limits(max_bytes=int(args.max_upload_mb * 1e6), max_pixels=args.max_pixels, timeout_s=args.timeout)
    app = create_app(predictor, batcher, limits, args.cors)
    batcher.start()
    info = predictor.info
    print(f"model {info['name']} ({info['dataset']}, {len(info['classes'])} classes) loaded and warmed in "
          f"{seconds:.1f} s; serving http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        batcher.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)  # see _model_module
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="the run directory of hsnet_jax.train (JAX)")
    source.add_argument("--export", metavar="DIR", help="an export of convert/export_model.py (ONNX Runtime, no jax)")
    parser.add_argument("--which", default="best", help="with --workdir, the checkpoint: best or latest (default best)")
    parser.add_argument("--int8", action="store_true", help="with --export, run hsnet.int8.onnx (exported with --int8)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--cors", metavar="ORIGIN", help="allow this web origin to call the API (default: none)")
    parser.add_argument("--max_batch", type=int, default=16,
                        help="requests detected and classified together, and faces per forward pass "
                             "(default 16; 1 turns dynamic batching off)")
    parser.add_argument("--batch_window_ms", type=float, default=5.0,
                        help="how long a batch waits for more requests (default 5 ms)")
    parser.add_argument("--queue", type=int, default=64, help="requests waiting at most; more get 503 (default 64)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take (default 30)")
    parser.add_argument("--max_upload_mb", type=float, default=20.0, help="largest request body (default 20 MB)")
    parser.add_argument("--max_pixels", type=int, default=40_000_000,
                        help="largest photo, width x height, checked before decoding (default 40,000,000)")
    parser.add_argument("--max_side", type=int, default=1024, metavar="PIXELS",
                        help="detect faces on the photo shrunk to this longer side, as predict's --max_side "
                             "(default 1024; 0: full resolution)")
    args = parser.parse_args(argv)
    if args.int8 and not args.export:
        raise HSNetError("--int8 is for --export DIR (an export written with --int8)")
    if args.max_batch < 1 or args.queue < 1 or args.timeout <= 0 or args.batch_window_ms < 0:
        raise HSNetError("--max_batch and --queue must be at least 1, --timeout positive, --batch_window_ms >= 0")
    if args.max_side and args.max_side < 20:
        raise HSNetError(f"--max_side {args.max_side}: must be at least 20 (MTCNN's smallest face), or 0")
    return serve(args)


def _model_module(argv: list[str]) -> str:
    """The module the command line's model needs, imported under `cli.run`'s start-up Ctrl-C
    handler (JAX for a run: seconds; ONNX Runtime for an export)."""
    export = any(a == "--export" or a.startswith("--export=") for a in argv)  # no abbreviations
    return "hsnet_jax.serving.onnx_model" if export else "hsnet_jax.serving.run_model"


if __name__ == "__main__":
    sys.exit(cli.run(main, preload=("hsnet_jax.serving.app", _model_module(sys.argv[1:]))))
