"""Request guards in front of the model: body size limit, optional bearer tokens, per-token rate limit.

:meth:`Guard.admit` is the one auth and rate-limit check. REST calls it from :class:`GuardMiddleware` (a
plain ASGI middleware, which also enforces the body size limit) and answers a refusal with HTTP 401/429;
gRPC calls it from the predictor (gRPC metadata reaches the model as headers; KServe's gRPC server takes
no interceptors) and raises :meth:`Denied.grpc_error`. Health, readiness, metadata and ``/metrics``
routes stay open.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from grpc_interceptor.exceptions import GrpcException, ResourceExhausted, Unauthenticated, Unavailable

from aidetect.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def load_tokens(env_var: str = "", file: str = "") -> list[str]:
    """Tokens from ``$env_var`` (comma separated) and ``file`` (one per line, ``#`` comments)."""
    tokens = [t.strip() for t in os.environ.get(env_var, "").split(",")] if env_var else []
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"auth_tokens_file: cannot read {file}: {exc.strerror}") from None
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return [t for t in tokens if t]


class TokenBucket:
    """Per-key token buckets: ``rate`` requests per second with bursts up to ``burst``.

    At most ``max_keys`` buckets are kept, least recently used dropped first: many distinct keys cost
    bounded memory and only refill the coldest keys' buckets, never everyone's."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # pickled into REST worker processes
        return {"rate": self.rate, "burst": self.burst, "max_keys": self.max_keys, "_state": OrderedDict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if allowed, else the seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.pop(key, (self.burst, now))  # re-added last: most recently used
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._state[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
            return 0.0 if allowed else (1.0 - tokens) / self.rate


class InflightLimit:
    """At most ``limit`` requests in flight; one beyond it is shed (REST 503, gRPC UNAVAILABLE) before
    its body is read or decoded, so a burst costs a refusal, not memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # each REST worker process counts its own
        return {"limit": self.limit, "current": 0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.current >= self.limit:
                return False
            self.current += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.current -= 1

    def grpc_error(self) -> GrpcException:
        return Unavailable(f"server busy: {self.limit} requests in flight; retry shortly")


@dataclass(frozen=True)
class Denied:
    """Why a request may not reach the model, in the terms of both protocols."""

    status: int  # 401 | 429
    message: str
    retry_after: int = 0

    @property
    def reason(self) -> str:
        """The ``aidetect_rejected_inputs_total`` reason."""
        return "unauthorized" if self.status == 401 else "rate_limited"

    def http_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"retry-after", str(self.retry_after).encode())] if self.retry_after else []
        if self.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        return headers

    def grpc_error(self) -> GrpcException:
        """UNAUTHENTICATED or RESOURCE_EXHAUSTED (KServe's gRPC server maps these to the status code)."""
        if self.status == 401:
            return Unauthenticated(self.message)
        return ResourceExhausted(f"{self.message}; retry after {self.retry_after} s")


class Guard:
    """Decides whether a request may reach the model."""

    def __init__(
        self,
        tokens: list[str],
        required: bool,
        rate: float,
        burst: int,
        client_header: str = "",
        max_keys: int = 100_000,
    ) -> None:
        if required and not tokens:
            raise ConfigError(
                "auth_required: no tokens configured (set the tokens env var or auth_tokens_file)"
            )
        self.tokens = [t.encode() for t in tokens]
        self.required = required
        self.client_header = client_header.lower()
        self.bucket = TokenBucket(rate, burst, max_keys) if rate > 0 else None

    def _valid(self, token: bytes) -> bool:
        ok = False
        for t in self.tokens:  # compare against every token: time does not depend on which matched
            ok |= hmac.compare_digest(t, token)
        return ok

    def admit(self, headers: Mapping[str, str], client: str) -> Denied | None:
        """The one check for REST and gRPC: ``None`` lets the request in.

        ``headers`` are lower-cased (HTTP headers or gRPC metadata). The rate-limit key is the
        authenticated token; without one, the configured trusted proxy header (the last value: the one
        the proxy appended); else ``client``, the peer address. A header the client alone controls
        (``X-Forwarded-For`` without a proxy that sets it) never keys a bucket."""
        key = ""
        if self.required:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not token or not self._valid(token.strip().encode()):
                return Denied(401, "missing or invalid bearer token")
            key = "token:" + token.strip()
        if not key and self.client_header and headers.get(self.client_header):
            key = "client:" + headers[self.client_header].rsplit(",", 1)[-1].strip()[:256]
        if self.bucket is not None:
            wait = self.bucket.take(key or "peer:" + client)
            if wait > 0:
                return Denied(429, "rate limit exceeded", retry_after=max(1, math.ceil(wait)))
        return None


_HEADERS_KEY = "aidetect.headers"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as a lower-cased dict, parsed once per request (cached in the scope)."""
    headers = scope.get(_HEADERS_KEY)
    if headers is None:
        raw = scope.get("headers", [])
        headers = scope[_HEADERS_KEY] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    return headers


OPEN_PATHS = ("/", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready", "/v1/models", "/v2/models")
# KServe's model-repository API (load / unload): one pinned bundle per server, so these routes do not
# exist for anyone (404 before routing; gRPC: kserve_compat.PinnedRepository)
CLOSED_PREFIXES = ("/v2/repository",)
# the one route with the binary data extension (rest.InferEndpoint): every other route parses JSON whole
_BINARY_ROUTE = re.compile(r"/v2/models/[^/]+/infer")
# the review page and its static assets carry no data (the page asks for the token; /review/api is guarded)
OPEN_PAGE, OPEN_PAGE_ASSETS = "/review", "/review/static/"


def is_open_path(path: str) -> bool:
    """Health, readiness, metadata and metrics routes (no body, no model work) are never guarded."""
    if path in OPEN_PATHS or path == OPEN_PAGE or path.startswith(OPEN_PAGE_ASSETS):
        return True
    return path.startswith(("/v2/models/", "/v1/models/")) and not path.endswith(
        ("/infer", ":predict", ":explain")
    )


class GuardMiddleware:
    """ASGI middleware in front of every guarded route: :class:`Guard` (401 / 429 + Retry-After), the
    in-flight limit (503 + Retry-After), then 413 above the body limit: ``max_body`` for the V2 infer
    route (binary data), ``max_json_body`` for every other route (KServe's JSON-only routes parse
    the whole body)."""

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard | None,
        max_body: int,
        on_reject: Callable[[str], None] | None = None,
        on_start: Callable[[], None] | None = None,
        *,
        inflight: InflightLimit | None = None,
        max_json_body: int | None = None,
    ) -> None:
        self.app = app
        self.on_start = on_start
        self.guard = guard
        self.max_body = max_body
        self.max_json_body = max_body if max_json_body is None else min(max_json_body, max_body)
        self.inflight = inflight
        self.on_reject = on_reject or (lambda reason: None)

    async def _answer(
        self, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = orjson.dumps({"error": message})
        hdrs = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on_start is not None:  # first event in this process (lifespan startup)
            start, self.on_start = self.on_start, None
            start()
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(CLOSED_PREFIXES):
            await self._answer(send, 404, "not found", [])
            return
        if scope["type"] != "http" or is_open_path(path):
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        if self.guard is not None:
            client = (scope.get("client") or ("?", 0))[0]
            denied = self.guard.admit(headers, client)
            if denied is not None:
                self.on_reject(denied.reason)
                await self._answer(send, denied.status, denied.message, denied.http_headers())
                return
        if self.inflight is None:
            await self._bounded(scope, receive, send, headers)
            return
        if not self.inflight.enter():
            self.on_reject("overloaded")
            retry = [(b"retry-after", b"1")]
            await self._answer(send, 503, f"server busy: {self.inflight.limit} requests in flight", retry)
            return
        try:
            await self._bounded(scope, receive, send, headers)
        finally:
            self.inflight.leave()

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        """Pass the request on unless its body is above the route's limit (413)."""
        path: str = scope.get("path", "")
        limit = self.max_body if _BINARY_ROUTE.fullmatch(path) else self.max_json_body
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self.on_reject("request_too_large")
            await self._answer(send, 413, f"request body of {declared} bytes exceeds the limit {limit}", [])
            return
        if declared is not None and declared.isdigit():
            await self.app(scope, receive, send)  # the server reads exactly the declared length
            return
        # no (valid) Content-Length, e.g. chunked: read up to the limit first, then replay
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                self.on_reject("request_too_large")
                await self._answer(send, 413, f"request body exceeds the limit {limit} bytes", [])
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
