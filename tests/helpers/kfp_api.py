"""A loopback HTTP server standing in for the Kubeflow Pipelines v2beta1 REST API (no cluster here).

It answers the routes ``kfp.Client`` uses to submit runs and recurring runs, and records every request
(method, path, query, JSON body) so tests can assert what a real API server would have received.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeKfpApi:
    """State of the fake API: what it received, and what it should answer."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_runs_with: int | None = None  # answer POST /runs with this HTTP status

    def received(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _handler(state: FakeKfpApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Recorded:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            rec = Recorded(self.command, parts.path, parse_qs(parts.query), body)
            state.requests.append(rec)
            return rec

        def do_GET(self) -> None:
            rec = self._record()
            if rec.path == "/apis/v2beta1/healthz":
                self._reply(200, {"multi_user": False})
            elif rec.path == "/apis/v2beta1/experiments":
                flt = json.loads(rec.query.get("filter", ["{}"])[0])
                wanted = [p.get("string_value") or p.get("stringValue") for p in flt.get("predicates", [])]
                found = [e for e in state.experiments.values() if e["display_name"] in wanted]
                self._reply(200, {"experiments": found, "total_size": len(found)} if found else {})
            else:
                self._reply(404, {"error": f"no route {rec.path}"})

        def do_POST(self) -> None:
            rec = self._record()
            if rec.path == "/apis/v2beta1/experiments":
                exp_id = f"exp-{len(state.experiments) + 1}"
                exp = {"experiment_id": exp_id, "display_name": rec.body["display_name"]}
                state.experiments[exp_id] = exp
                self._reply(200, exp)
            elif rec.path == "/apis/v2beta1/runs":
                if state.fail_runs_with:
                    self._reply(state.fail_runs_with, {"error": "pipeline spec rejected", "code": 3})
                    return
                n = len(state.received("POST", rec.path))
                self._reply(200, {**rec.body, "run_id": f"run-{n}", "state": "PENDING"})
            elif rec.path == "/apis/v2beta1/recurringruns":
                n = len(state.received("POST", rec.path))
                self._reply(200, {**rec.body, "recurring_run_id": f"rr-{n}", "status": "ENABLED"})
            else:
                self._reply(404, {"error": f"no route {rec.path}"})

    return Handler


@contextlib.contextmanager
def fake_kfp_api() -> Iterator[FakeKfpApi]:
    """Serve a :class:`FakeKfpApi` on a free loopback port for the duration of the block."""
    state = FakeKfpApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
