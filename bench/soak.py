"""Soak: ``aidetect serve`` at 80 % of its saturated throughput with valid and hostile requests, the
inference log on a real S3 server (SeaweedFS) that is killed and restarted mid-run.

1. Saturation: a closed loop of valid requests (``--concurrency`` in flight) for ``--probe`` seconds.
2. Soak: an open loop at ``--load`` x that rate for ``--duration`` seconds; about ``--hostile`` of the
   requests are hostile (malformed JSON, ``"data": 5``, ragged and 900-deep data, bad base64, a
   1 x 100000 PNG, made-up model names, 100 KB request ids, CRLF input names, no token, repository
   unloads, 9 MB JSON bodies). SeaweedFS is SIGKILLed at 40 % of the soak and restarted at 60 %.
3. SIGTERM to the server (it flushes the inference log), then every logged row is read back from S3.

Reports, per ``--window`` seconds: requests, statuses by request class, p50/p95/p99 of valid requests
(from the scheduled send time) and the server's RSS; overall: unexpected answers per class (a 5xx,
a dropped connection, a status the class should not get), and rows logged vs predictions made (rows
written + rows the server counted as dropped must equal predictions). Usage::

    nice -n 5 .venv/bin/python bench/soak.py --duration 600 --out bench/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from serving_load import build_model_files, load_payloads  # noqa: E402

from aidetect.serving.client import build_image_request, free_port, wait_ready  # noqa: E402

MODEL, TOKEN, BUCKET = "detector", "soak-token", "soak"
S3_ENV = {"AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak", "AWS_DEFAULT_REGION": "us-east-1"}


# --- requests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    kind: str
    path: str
    body: bytes
    headers: dict[str, str]
    expected: frozenset[int]  # statuses this class may get (503 = shed load is always allowed)
    images: int = 0  # predictions a 200 makes


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _infer_path(model: str = MODEL) -> str:
    return f"/v2/models/{model}/infer"


def _auth(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {TOKEN}", **(headers or {})}


def _nested(depth: int) -> object:
    doc: object = 1
    for _ in range(depth):
        doc = [doc]
    return doc


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 30, 200)).save(buf, "PNG")
    return buf.getvalue()


def hostile_requests() -> list[Request]:
    """One request per hostile class, with the answers a hardened server gives it."""
    pixels = {"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 2, 3]}
    image = {"name": "image", "datatype": "BYTES", "shape": [1]}
    needle = {**image, "data": [base64.b64encode(_png(1, 100_000)).decode()]}
    bad = frozenset({400})

    def make(kind: str, doc: object, expected: frozenset[int] = bad, **kw: object) -> Request:
        body = doc if isinstance(doc, bytes) else _json(doc)
        path = str(kw.get("path", _infer_path()))
        headers = kw.get("headers", _auth())
        return Request(kind, path, body, headers, expected, int(kw.get("images", 0)))  # type: ignore[arg-type]

    return [
        make("malformed_json", b'{"inputs": ['),
        make("data_is_a_number", {"inputs": [{**pixels, "data": 5}]}),
        make("ragged_data", {"inputs": [{**pixels, "data": [[1, 2, 3], [4]]}]}),
        make("nested_900_deep", {"inputs": [{**pixels, "data": _nested(900)}]}),
        make("bad_base64", {"inputs": [{**image, "data": ["%%%"]}]}),
        make("needle_png", {"inputs": [needle]}, frozenset({200}), images=1),
        make(
            "made_up_model",
            {"inputs": []},
            frozenset({400, 404}),
            path=_infer_path("m-" + os.urandom(4).hex()),
        ),
        make("long_request_id", {"id": "i" * 100_000, "inputs": [needle]}),
        make("crlf_input_name", {"inputs": [{**image, "name": "x\r\nFORGED", "data": ["AA=="]}]}),
        make(
            "no_token", {"inputs": [needle]}, frozenset({401}), headers={"content-type": "application/json"}
        ),
        make(
            "repository_unload", b"", frozenset({401, 404, 405}), path=f"/v2/repository/models/{MODEL}/unload"
        ),
        make("json_9mb", {"inputs": [{**pixels, "data": [1] * 4_500_000}]}, frozenset({400, 413})),
    ]


def valid_request(image: bytes) -> Request:
    body, headers = build_image_request([image])
    return Request(
        "valid", _infer_path(), body, {**headers, "authorization": f"Bearer {TOKEN}"}, frozenset({200}), 1
    )


# --- the store ---------------------------------------------------------------------------------------


class SeaweedS3:
    """``weed server -s3`` on loopback with a data folder that survives a SIGKILL and a restart."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "seaweed"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = {name: _port_pair() for name in ("master", "volume", "filer")}
        self.s3_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.proc: subprocess.Popen | None = None
        self.log = work / "seaweed.log"

    def start(self) -> None:
        weed = str(Path(sys.executable).parent / "weed")
        cmd = [weed, "server", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-master.port={self.ports['master']}", f"-volume.port={self.ports['volume']}",
               f"-filer.port={self.ports['filer']}", "-s3", f"-s3.port={self.s3_port}",
               "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed default ports: off
               "-master.volumeSizeLimitMB=64", "-volume.max=8"]  # fmt: skip
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def kill(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def client(self):
        import boto3
        from botocore.config import Config

        cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
        return boto3.client("s3", endpoint_url=self.endpoint, config=cfg, **_boto_keys())


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


def _port_pair() -> int:
    """A port whose +10000 (SeaweedFS's gRPC port) is free too."""
    while True:
        port = free_port()
        if port < 55000:
            with contextlib.suppress(OSError):
                import socket

                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
                return port


def logged_times(store: SeaweedS3) -> list[float]:
    """The ``ts`` (epoch seconds) of every row the inference log wrote to the store."""
    import pyarrow.parquet as pq

    client, times = store.client(), []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="log/"):
        for obj in page.get("Contents", []):
            data = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            ts = pq.read_table(io.BytesIO(data), columns=["ts"]).column("ts").to_pylist()
            times += [t.timestamp() for t in ts]
    return times


# --- load --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    t: float  # seconds since the soak started (scheduled send time)
    kind: str
    status: int  # 0: no HTTP answer (connection dropped, timeout)
    latency: float
    images: int


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0  # not sent: the client already had its in-flight cap outstanding
    wall0: float = 0.0  # epoch seconds at t = 0 (to place the logged rows' timestamps)


async def _send(session: aiohttp.ClientSession, url: str, req: Request) -> int:
    try:
        async with session.post(url + req.path, data=req.body, headers=req.headers) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def closed_loop(
    url: str, requests: list[Request], concurrency: int, seconds: float
) -> tuple[int, float]:
    """``requests`` in turn with ``concurrency`` in flight: (predictions made, answers per second)."""
    done = answered = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker(k: int) -> None:
            nonlocal done, answered
            i = k
            while time.perf_counter() < deadline:
                req = requests[i % len(requests)]
                status = await _send(session, url, req)
                done += req.images if status == 200 else 0  # after the await: `+= await` loses updates
                answered += status != 0
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done, answered / (time.perf_counter() - t0)


async def open_loop(
    url: str,
    pick: Callable[[int], Request],
    rate: float,
    seconds: float,
    events: list[tuple[float, Callable]],
) -> Run:
    """Send request ``i`` at ``i / rate`` s whatever the answers (a stalled server cannot hide its queue);
    ``events`` run at their times (store kill and restart)."""
    run, cap = Run(), asyncio.Semaphore(512)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()
    background: list[asyncio.Future] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        t0, run.wall0 = time.perf_counter(), time.time()

        async def fire(i: int, scheduled: float) -> None:
            req = pick(i)
            async with cap:
                status = await _send(session, url, req)
            run.outcomes.append(
                Outcome(scheduled - t0, req.kind, status, time.perf_counter() - scheduled, req.images)
            )

        pending = sorted(events)
        for i in range(int(rate * seconds)):
            scheduled = t0 + i / rate
            while pending and pending[0][0] <= scheduled - t0:
                _, action = pending.pop(0)
                background.append(loop.run_in_executor(None, action))  # the load does not wait for it
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            if cap.locked():
                run.skipped += 1
                continue
            task = asyncio.create_task(fire(i, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks, *background)
    return run


class RssSampler:
    """The server's RSS every ``every`` seconds: ``[(seconds since start, MB)]``."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        self.proc, self.every, self.samples = psutil.Process(pid), every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                rss = sum(p.memory_info().rss for p in [self.proc, *self.proc.children(recursive=True)])
                self.samples.append((round(time.perf_counter() - t0, 1), round(rss / 2**20, 1)))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- report ------------------------------------------------------------------------------------------


def summarize(
    run: Run, rss: list[tuple[float, float]], logged: list[float], window: float, seconds: float
) -> dict:
    windows = []
    rows_at = np.array(logged) - run.wall0
    for start in np.arange(0.0, seconds, window):
        inside = [o for o in run.outcomes if start <= o.t < start + window]
        valid = np.array([o.latency for o in inside if o.kind == "valid" and o.status == 200]) * 1000
        mem = [mb for t, mb in rss if start <= t < start + window]
        statuses = Counter(f"{'valid' if o.kind == 'valid' else 'hostile'}:{o.status}" for o in inside)
        windows.append(
            {
                "from_s": float(start),
                "requests": len(inside),
                # by send time and by the server's timestamp: equal up to requests straddling an edge
                "predictions": sum(o.images for o in inside if o.status == 200),
                "rows_logged": int(((rows_at >= start) & (rows_at < start + window)).sum()),
                "statuses": dict(sorted(statuses.items())),
                "valid_p50_ms": _pct(valid, 50),
                "valid_p95_ms": _pct(valid, 95),
                "valid_p99_ms": _pct(valid, 99),
                "rss_mb_max": max(mem) if mem else None,
            }
        )
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for o in run.outcomes:
        by_kind[o.kind][o.status] += 1
    return {
        "windows": windows,
        "statuses_by_class": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
    }


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def unexpected(run: Run, expected: dict[str, frozenset[int]]) -> dict[str, dict[int, int]]:
    """Answers a class should never get (5xx other than a 503 shed, dropped connections, wrong codes)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for o in run.outcomes:
        if o.status not in expected[o.kind] | {503}:
            out[o.kind][o.status] += 1
    return {k: dict(v) for k, v in out.items()}


_LOG_SUMMARY = re.compile(r"inference log closed: (\d+) rows written, (\d+) dropped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="soak seconds")
    ap.add_argument("--probe", type=float, default=20.0, help="seconds of the saturation probe")
    ap.add_argument("--load", type=float, default=0.8, help="fraction of the saturated throughput")
    ap.add_argument("--hostile", type=float, default=0.15, help="share of hostile requests")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--window", type=float, default=30.0, help="seconds per reported window")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()

    images = load_payloads(100)["32px"]
    valid = [valid_request(img) for img in images]
    hostile = hostile_requests()
    expected = {"valid": frozenset({200})} | {r.kind: r.expected for r in hostile}
    every = max(2, round(1 / max(args.hostile, 1e-6)))

    def pick(i: int) -> Request:
        return hostile[(i // every) % len(hostile)] if i % every == every // 2 else valid[i % len(valid)]

    with tempfile.TemporaryDirectory(prefix="aidetect-soak-") as tmp:
        work = Path(tmp)
        _, bundle = build_model_files(work, "compact", args.input_size, None)
        store = SeaweedS3(work)
        store.start()
        store.client().create_bucket(Bucket=BUCKET)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            **S3_ENV,
            "AWS_ENDPOINT_URL_S3": store.endpoint,
            "AIDETECT_SERVE_TOKENS": TOKEN,
            "AIDETECT_SERVING__AUTH_REQUIRED": "true",
            "AIDETECT_SERVING__INFERENCE_LOG_URI": f"s3://{BUCKET}/log",
            "AIDETECT_SERVING__INFERENCE_LOG_FLUSH_SECONDS": "5",
            "AIDETECT_STORAGE__MAX_ATTEMPTS": "2",
            "AIDETECT_STORAGE__CONNECT_TIMEOUT_S": "2",
        }
        cmd = [sys.executable, "-m", "aidetect.cli", "serve", "--model", str(bundle), "--name", MODEL,
               "--http-port", str(port), "--grpc-port", str(free_port())]  # fmt: skip
        serve_log = work / "serve.log"
        with open(serve_log, "wb") as fh:
            server = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            wait_ready(f"{url}/v2/health/ready", server, 180, log=serve_log)
            warm, _ = asyncio.run(closed_loop(url, valid, 4, 3.0))
            mix = [pick(i) for i in range(600)]  # the soak's own mix: hostile requests cost more
            probed, saturated = asyncio.run(closed_loop(url, mix, args.concurrency, args.probe))
            rate = args.load * saturated
            print(
                f"# saturated: {saturated:.1f} rps; soaking at {rate:.1f} rps for {args.duration:g} s",
                flush=True,
            )
            outage: dict[str, float] = {}

            def mark(name: str, action: Callable[[], None]) -> Callable[[], None]:
                def run_it() -> None:
                    outage[name + "_started_s"] = round(time.time() - run_wall0[0], 1)
                    action()
                    outage[name + "_done_s"] = round(time.time() - run_wall0[0], 1)

                return run_it

            run_wall0 = [time.time()]
            events = [
                (0.4 * args.duration, mark("kill", store.kill)),
                (0.6 * args.duration, mark("restart", store.start)),
            ]
            with RssSampler(server.pid) as rss:
                run = asyncio.run(open_loop(url, pick, rate, args.duration, events))
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(timeout=60)
            logged = logged_times(store)
        finally:
            if server.poll() is None:
                server.kill()
            store.kill()
        log_text = serve_log.read_text(errors="replace")
    made = warm + probed + sum(o.images for o in run.outcomes if o.status == 200)  # every 200: 1 image
    written, dropped = (int(x) for x in (_LOG_SUMMARY.findall(log_text) or [("-1", "-1")])[-1])
    report = {
        "args": vars(args),
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "saturated_rps": round(saturated, 1),
        "soak_rps": round(rate, 1),
        "sent": len(run.outcomes),
        "skipped_by_client_cap": run.skipped,
        "server_exit_code": exit_code,
        "predictions": made,  # warm-up and saturation probe included (they are logged too)
        "store_outage": outage,  # seconds into the soak: SIGKILL, and the restarted store answering
        "rows_in_s3": len(logged),
        "rows_written_by_server": written,
        "rows_dropped_by_server": dropped,
        "rows_accounted": written + dropped == made and len(logged) == written,
        "unexpected": unexpected(run, expected),
        "tracebacks_in_server_log": log_text.count("Traceback"),
        **summarize(run, rss.samples, logged, args.window, args.duration),
        "rss_mb": rss.samples,
    }
    print(json.dumps({k: v for k, v in report.items() if k not in {"windows", "rss_mb"}}, indent=2))
    for w in report["windows"]:
        print(json.dumps(w))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
