"""Bearer tokens, rate limit and body-size limit in front of the model, over a real ASGI app."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aidetect.errors import ConfigError
from aidetect.serving.guard import Guard, GuardMiddleware, TokenBucket, is_open_path, load_tokens


async def _echo(scope, receive, send) -> None:
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _client(guard: Guard | None, max_body: int = 1000, rejected: list | None = None) -> httpx.AsyncClient:
    app = GuardMiddleware(
        _echo, guard, max_body, on_reject=(rejected.append if rejected is not None else None)
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_body_limit_with_and_without_content_length() -> None:
    rejected: list[str] = []

    async def run() -> None:
        async with _client(None, 1000, rejected) as c:
            assert (await c.post("/v2/models/m/infer", content=b"x" * 1000)).text == "1000"
            r = await c.post("/v2/models/m/infer", content=b"x" * 1001)
            assert r.status_code == 413 and "exceeds the limit 1000" in r.json()["error"]

            async def chunks():
                for _ in range(3):
                    yield b"y" * 400

            r = await c.post("/v2/models/m/infer", content=chunks())  # chunked: no Content-Length
            assert r.status_code == 413

            async def small():
                yield b"y" * 10

            assert (await c.post("/v2/models/m/infer", content=small())).text == "10"

    asyncio.run(run())
    assert rejected == ["request_too_large", "request_too_large"]


def test_tokens_and_open_routes() -> None:
    guard = Guard(["alpha", "beta"], required=True, rate=0, burst=0)

    async def run() -> None:
        async with _client(guard) as c:
            assert (await c.post("/v2/models/m/infer", content=b"1")).status_code == 401
            r = await c.post("/v2/models/m/infer", content=b"1", headers={"Authorization": "Bearer gamma"})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            r = await c.post("/v2/models/m/infer", content=b"1", headers={"Authorization": "Bearer beta"})
            assert r.status_code == 200
            for path in (
                "/v2/health/ready",
                "/v2/health/live",
                "/metrics",
                "/v2/models/m",
                "/v2/models/m/ready",
            ):
                assert (await c.get(path)).status_code == 200, path
            r = await c.post("/v1/models/m:explain", content=b"1")
            assert r.status_code == 401

    asyncio.run(run())


def test_rate_limit_answers_429_with_retry_after() -> None:
    guard = Guard(["a", "b"], required=True, rate=0.5, burst=2)

    async def run() -> None:
        async with _client(guard) as c:
            hdr = {"Authorization": "Bearer a"}
            codes = [
                (await c.post("/v2/models/m/infer", content=b"1", headers=hdr)).status_code for _ in range(3)
            ]
            assert codes == [200, 200, 429]
            r = await c.post("/v2/models/m/infer", content=b"1", headers=hdr)
            assert r.status_code == 429 and int(r.headers["retry-after"]) in (1, 2)
            other = await c.post("/v2/models/m/infer", content=b"1", headers={"Authorization": "Bearer b"})
            assert other.status_code == 200  # per-token buckets

    asyncio.run(run())


def test_token_bucket_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("aidetect.serving.guard.time.monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2.0, burst=1)
    assert bucket.take("k") == 0.0
    assert bucket.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take("k") == 0.0


def test_tokens_from_env_and_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKENS", " one, two ,")
    f = tmp_path / "tokens"
    f.write_text("# comment\nthree\n\n")
    assert load_tokens("MY_TOKENS", str(f)) == ["one", "two", "three"]
    with pytest.raises(ConfigError, match="auth_tokens_file"):
        load_tokens("", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no tokens"):
        Guard([], required=True, rate=0, burst=0)
    assert is_open_path("/v2/models/x/ready") and not is_open_path("/v2/models/x/infer")
