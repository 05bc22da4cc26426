"""The guard's own bounds: LRU-bounded rate-limit buckets, the in-flight limit, log-safe client text."""

from __future__ import annotations

from aidetect.serving.guard import Guard, InflightLimit, TokenBucket
from aidetect.serving.logs import printable


def test_many_new_keys_evict_only_the_coldest_bucket_never_everyone() -> None:
    bucket = TokenBucket(rate=0.001, burst=1, max_keys=100)
    assert bucket.take("victim") == 0.0 and bucket.take("victim") > 0  # exhausted
    for i in range(99):  # fill the table: the victim is still limited
        bucket.take(f"k{i}")
    assert bucket.take("victim") > 0  # used just now: the most recent key
    for i in range(99, 198):  # 99 more keys: each evicts the coldest, never the victim's bucket
        bucket.take(f"k{i}")
    assert len(bucket._state) == 100
    assert bucket.take("victim") > 0
    assert bucket.take("k0") == 0.0  # a long-evicted key starts afresh (it is no one's hot bucket)


def test_the_key_is_the_token_then_the_trusted_header_never_x_forwarded_for() -> None:
    guard = Guard([], required=False, rate=0.001, burst=1, client_header="X-Client")
    assert guard.admit({"x-forwarded-for": "1.1.1.1"}, "10.0.0.9") is None
    denied = guard.admit({"x-forwarded-for": "2.2.2.2"}, "10.0.0.9")  # same peer: same bucket
    assert denied is not None and denied.status == 429
    assert guard.admit({"x-client": "a, b"}, "10.0.0.9") is None  # the proxy's value: the last one
    assert guard.admit({"x-client": "forged, b"}, "10.0.0.9") is not None
    authed = Guard(["t1", "t2"], required=True, rate=0.001, burst=1)
    assert authed.admit({"authorization": "Bearer t1", "x-client": "x"}, "p") is None
    assert authed.admit({"authorization": "Bearer t1"}, "other-peer") is not None
    assert authed.admit({"authorization": "Bearer t2"}, "p") is None


def test_the_in_flight_limit_admits_up_to_its_bound() -> None:
    limit = InflightLimit(2)
    assert limit.enter() and limit.enter() and not limit.enter()
    limit.leave()
    assert limit.enter()


def test_printable_escapes_what_would_forge_a_log_line() -> None:
    assert printable("x\r\nERROR forged\u2028\x00") == "x\\r\\nERROR forged\\u2028\\x00"
    assert printable("é ok") == "é ok"
    assert printable("a" * 600, 10) == "a" * 10 + "..."


def test_liveness_follows_the_model() -> None:
    """KServe's own liveness is always "alive"; ours fails with the model (REST 503, gRPC live=false)."""
    import asyncio

    from aidetect.serving.kserve_compat import Model, ModelBoundDataPlane, kserve

    model = Model("m")
    model.ready = True
    plane = ModelBoundDataPlane(kserve.ModelRepository(), model)
    assert asyncio.run(plane.live()) == {"status": "alive"}
    model.ready = False
    assert asyncio.run(plane.live()) == {"status": "model not ready"}
