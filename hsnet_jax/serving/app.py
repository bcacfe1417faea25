"""The demo server's routes (Starlette): the page, the prediction API, the model's card.

GET / and /static/*: the page (hsnet_jax/serving/static, served from the package: no CDN).
POST /predict: a photo (multipart file or raw body) -> `predict --json --detect_face`'s answer
for it, through the dynamic batcher. GET /model: name, classes, input size, test metrics.
GET /health: {"status": "ok"} and the queue's state. Every refusal is JSON `{"error": "..."}`
with one line of reason: 400 / 413 / 415 / 422 for the photo, 503 with Retry-After when the
queue is full or the request outlived its time limit. Nothing is written to disk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hsnet_jax.serving.batcher import Batcher, QueueFull
from hsnet_jax.serving.uploads import Refused, check_image, read_body, upload_of

STATIC = importlib.resources.files("hsnet_jax.serving") / "static"
# The page loads only its own files; pictures are drawn from blob: URLs and the camera.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int = 20_000_000  # request body
    max_pixels: int = 40_000_000  # width x height from the header
    timeout_s: float = 30.0  # per request, queueing included
    retry_after_s: int = 1  # what a refused client is told to wait


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status, headers=headers)


def create_app(predictor: Any, batcher: Batcher, limits: Limits = Limits(), cors: str | None = None) -> Starlette:
    """The app around a started `batcher` of `predictor.predict`; `cors` an allowed origin."""

    async def page(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), headers=SECURITY_HEADERS)

    async def model(request: Request) -> Response:
        return JSONResponse(predictor.info)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "queued": batcher.queued(), "batches": len(batcher.batch_sizes)})

    async def predict(request: Request) -> Response:
        try:
            body = await read_body(request.headers, request.stream(), limits.max_bytes)
            upload = upload_of(body, request.headers.get("content-type", ""))
            check_image(upload, limits.max_pixels)
        except Refused as e:
            return _error(e.status, str(e))
        retry = {"Retry-After": str(limits.retry_after_s)}
        try:
            status, answer = await batcher.submit(upload, limits.timeout_s)
        except QueueFull:
            return _error(503, "the server is busy (its queue is full): try again in a moment", retry)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            return _error(503, f"no answer within the time limit of {limits.timeout_s:g} s: try again "
                               "with a smaller photo or later", retry)
        return JSONResponse(answer, status)

    routes = [Route("/", page), Route("/model", model), Route("/health", health),
              Route("/predict", predict, methods=["POST"]),
              Mount("/static", StaticFiles(directory=str(STATIC)), name="static")]
    middleware = [Middleware(CORSMiddleware, allow_origins=[cors], allow_methods=["GET", "POST"],
                             allow_headers=["Content-Type"])] if cors else []
    return Starlette(routes=routes, middleware=middleware)
