"""The demo server under load: requests/s and latency with 1, 4 and 16 concurrent clients, with
and without dynamic batching, and its memory after many requests.

  python -m benchmarks.serve --workdir workdirs/demo [--requests 120] [--seconds 60] [--soak 2000]

Starts `python -m hsnet_jax.serve` twice as real processes on 127.0.0.1 (free ports): with
dynamic batching (`--max_batch 16`, the default) and without (`--max_batch 1`), side by side,
timed in turn at each concurrency so that both see the same machine load. Each client is a
thread sending one 480x360 JPEG webcam frame with a face (the astronaut, as the page sends
them) after the other over one keep-alive connection. Warm-up rounds (16 clients, then each
level's own; the detector compiles programs for new candidate counts) are not counted; then
`requests` requests or `seconds` seconds per level, whichever ends first. A failed request
(anything but 200) is counted and reported; the run exits 1 if there was one. Then `soak`
more requests with 16 clients to the batching server, its resident memory (VmRSS) read before
and after each quarter. Prints one JSON object and a markdown table.

The helpers (`Server`, `request`, `multipart`) are what tests/test_serve.py starts and calls
the server with.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

FRAME = (480, 360)  # width, height: the page's webcam frames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            connection: http.client.HTTPConnection | None = None, timeout: float = 120) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request to 127.0.0.1:port (on `connection` when given)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        if connection is None:
            conn.close()


def multipart(filename: str, data: bytes, content_type: str = "application/octet-stream") -> tuple[bytes, dict]:
    """A multipart/form-data body with one file field "file", and its Content-Type header."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@dataclasses.dataclass
class Server:
    """`python -m hsnet_jax.serve --workdir MODEL FLAGS...` (`--export MODEL` when `export`) on a
    free port of 127.0.0.1, as a context manager: started and ready (GET /health answers) on
    entry, stopped with Ctrl-C on exit."""

    model: str
    flags: tuple[str, ...] = ()
    env: dict | None = None
    log: str = os.devnull
    start_timeout: float = 600
    export: bool = False

    def __enter__(self) -> "Server":
        self.port = free_port()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(self.env or os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._log = open(self.log, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "hsnet_jax.serve",
                                         "--export" if self.export else "--workdir", self.model,
                                         "--port", str(self.port), *self.flags], cwd=root, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode} ({self.log})")
            try:
                if request(self.port, "GET", "/health", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the server did not answer within {self.start_timeout} s")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # Ctrl-C: uvicorn's graceful shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return kb / 1024


def webcam_frame() -> bytes:
    """A 480x360 JPEG with one face, as the page's webcam sends (the astronaut on grey)."""
    import skimage.data
    from PIL import Image

    frame = Image.new("RGB", FRAME, (90, 90, 90))
    frame.paste(Image.fromarray(skimage.data.astronaut()).resize((300, 300), Image.BILINEAR), (90, 30))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=85)
    return out.getvalue()


def load(port: int, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """`clients` threads sending `body` back to back until `requests` are done or `seconds` pass."""
    latencies: list[float] = []
    failures: list[int] = []
    lock, left = threading.Lock(), [requests]
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            start = time.perf_counter()
            try:
                status = request(port, "POST", "/predict", body, {"Content-Type": "image/jpeg"}, conn)[0]
            except OSError:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                (latencies.append(time.perf_counter() - start) if status == 200 else failures.append(status))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None  # noqa: E731
    return dict(clients=clients, requests=len(latencies), failed=len(failures), seconds=round(wall, 1),
                requests_per_s=round(len(latencies) / wall, 2), p50_ms=pick(0.5), p99_ms=pick(0.99),
                mean_ms=round(statistics.fmean(latencies) * 1000, 1) if latencies else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a run directory (hsnet_jax.train's)")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=120, help="timed requests per level at most")
    parser.add_argument("--seconds", type=float, default=60, help="seconds per level at most")
    parser.add_argument("--soak", type=int, default=2000, help="requests between the first and last memory reading")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    body = webcam_frame()
    import jax
    import starlette
    import uvicorn

    results: dict = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cores=os.cpu_count(),
                         python=platform.python_version(), jax=jax.__version__, starlette=starlette.__version__,
                         uvicorn=uvicorn.__version__, load_average_start=os.getloadavg()[0])
    modes = {"batching": ("--max_batch", "16"), "no batching": ("--max_batch", "1")}
    failed = 0
    with Server(args.workdir, modes["batching"], start_timeout=1800) as batched, \
            Server(args.workdir, modes["no batching"], start_timeout=1800) as alone:
        servers = {"batching": batched, "no batching": alone}
        for server in servers.values():  # warm-up, not timed: the detector's candidate-count programs
            load(server.port, body, max(levels), 3 * max(levels), 600)
        rows = []
        for clients in levels:  # the two servers in turn at each level: both see the same machine load
            for name, server in servers.items():
                load(server.port, body, clients, 2 * clients, 300)  # this level's batch sizes
                rows.append(dict(batching=name, **load(server.port, body, clients, args.requests, args.seconds)))
                failed += rows[-1]["failed"]
        results["levels"] = rows
        if args.soak:
            rss, soak = [batched.rss_mb()], []
            for _ in range(4):  # memory read every quarter of the soak
                soak.append(load(batched.port, body, max(levels), args.soak // 4, 3600))
                rss.append(batched.rss_mb())
            results["soak"] = dict(requests=sum(r["requests"] for r in soak), failed=sum(r["failed"] for r in soak),
                                   rss_mb=[round(m, 1) for m in rss],
                                   requests_per_s=round(statistics.fmean(r["requests_per_s"] for r in soak), 2))
            failed += results["soak"]["failed"]
    results["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))
    print("\n| dynamic batching | clients | requests | req/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|")
    for r in results["levels"]:
        print(f"| {r['batching']} | {r['clients']} | {r['requests']} | {r['requests_per_s']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['failed']} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
