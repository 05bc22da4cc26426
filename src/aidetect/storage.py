"""The one adapter for object storage: local folders and ``s3://`` URIs (any S3-compatible server).

The endpoint comes from boto3's own settings (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``,
credentials from the usual chain). Every failure becomes a :class:`StorageError` or
:class:`ServiceUnavailableError` with one clear line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aidetect.errors import ServiceUnavailableError, StorageError


def is_s3(uri: str | os.PathLike[str]) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    if not is_s3(uri):
        raise StorageError(f"not an s3:// URI: {uri}")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"s3 URI has no bucket: {uri}")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join path parts for either a local path or an s3 URI."""
    if is_s3(base):
        out = base.rstrip("/")
        for p in parts:
            out = f"{out}/{p.strip('/')}"
        return out
    return str(Path(base, *parts))


@dataclass(frozen=True)
class StorageConfig:
    """``configs/storage.yaml`` / ``AIDETECT_STORAGE__<FIELD>``: how the S3 adapter talks to the store."""

    endpoint_url: str = ""  # "" = AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS itself
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 3

    def validate(self) -> None:
        from aidetect.errors import ConfigError

        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0 or self.max_attempts < 1:
            raise ConfigError("connect_timeout_s, read_timeout_s (> 0), max_attempts (>= 1): out of range")


@functools.lru_cache(maxsize=4)
def _client(cfg: StorageConfig, endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    botocore_cfg = Config(
        connect_timeout=cfg.connect_timeout_s,
        read_timeout=cfg.read_timeout_s,
        retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=botocore_cfg)


def s3_client() -> Any:
    """A boto3 S3 client for the configured endpoint (or the standard ``AWS_ENDPOINT_URL(_S3)``)."""
    from aidetect.config import load

    cfg = load(StorageConfig, "storage")
    endpoint = cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return _client(cfg, endpoint or None)


@contextlib.contextmanager
def s3_errors(uri: str) -> Iterator[None]:
    """Translate botocore exceptions into one-line aidetect errors naming ``uri``."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            raise StorageError(f"access denied to {uri} ({code})") from None
        if code in {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}:
            raise StorageError(f"not found: {uri} ({code})") from None
        raise StorageError(f"S3 error on {uri}: {code or exc}") from None
    except NoCredentialsError:
        raise StorageError(
            f"no S3 credentials for {uri}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except EndpointConnectionError as exc:
        raise ServiceUnavailableError(f"S3 endpoint unreachable for {uri}: {exc}") from None
    except BotoCoreError as exc:
        raise ServiceUnavailableError(f"S3 request failed for {uri}: {exc}") from None


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    from botocore.exceptions import ClientError

    with s3_errors(uri):
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise


def read_bytes(uri: str) -> bytes:
    if not is_s3(uri):
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"not found: {uri}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc.strerror}") from None
    bucket, key = split_s3(uri)
    with s3_errors(uri):
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write atomically: a local file appears whole or not at all; S3 PUTs are atomic."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        with s3_errors(uri):
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def list_uris(prefix: str, suffix: str = "") -> list[str]:
    """All object URIs (or files, recursively) under ``prefix`` ending in ``suffix``, sorted."""
    if not is_s3(prefix):
        root = Path(prefix)
        if root.is_file():
            return [str(root)] if str(root).endswith(suffix) else []
        if not root.exists():
            return []
        return sorted(str(p) for p in root.rglob(f"*{suffix}") if p.is_file())
    bucket, key = split_s3(prefix)
    out: list[str] = []
    with s3_errors(prefix):
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(suffix):
                    out.append(f"s3://{bucket}/{obj['Key']}")
    return sorted(out)


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its URI, size in bytes and last-modified time (UTC)."""

    uri: str
    size: int
    modified: datetime


def list_objects(prefix: str) -> Iterator[ObjectInfo]:
    """Every object (or file, recursively) under ``prefix`` with its size and mtime, streamed in
    store order (S3 pages of 1000; local: a directory walk), for retention and size caps."""
    if not is_s3(prefix):
        root = Path(prefix)
        if not root.is_dir():
            return
        for p in root.rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # removed since the walk listed it
                st = p.stat()
                if p.is_file():
                    yield ObjectInfo(str(p), st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
        return
    bucket, key = split_s3(prefix)
    with s3_errors(prefix):
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                modified = obj["LastModified"].astimezone(UTC)
                yield ObjectInfo(f"s3://{bucket}/{obj['Key']}", int(obj["Size"]), modified)


def delete(uri: str) -> None:
    """Remove one object or file; a missing one is not an error (deleting is idempotent)."""
    if not is_s3(uri):
        with contextlib.suppress(FileNotFoundError):
            Path(uri).unlink()
        return
    bucket, key = split_s3(uri)
    with s3_errors(uri):
        s3_client().delete_object(Bucket=bucket, Key=key)


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """Yield a local path for ``uri``: the file itself, or a temporary download removed afterwards."""
    if not is_s3(uri):
        p = Path(uri)
        if not p.exists():
            raise StorageError(f"not found: {uri}")
        yield p
        return
    bucket, key = split_s3(uri)
    with tempfile.TemporaryDirectory(prefix="aidetect-s3-") as tmp:
        dest = Path(tmp) / (Path(key).name or "object")
        with s3_errors(uri):
            s3_client().download_file(bucket, key, str(dest))
        yield dest


def read_parquet(uri: str, what: str = "parquet file") -> Any:
    """A parquet file (local or ``s3://``) as a ``pyarrow.Table``; unreadable content is a StorageError
    naming ``what`` and the URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if is_s3(uri):
            return pq.read_table(pa.BufferReader(read_bytes(uri)))
        return pq.read_table(uri)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StorageError(f"cannot read {what} {uri}: {exc}") from None


def publish_dir(local_dir: str | Path, dest: str, marker: str | None = None, replace: bool = False) -> None:
    """Publish a finished local folder to ``dest`` atomically.

    Locally: one ``rename`` of a sibling temp folder (with ``replace``, an existing ``dest`` is swapped
    out and removed after). On S3: upload every file, then ``marker`` (a file inside ``local_dir``) last,
    so readers that require the marker never see a partial copy.
    """
    src = Path(local_dir)
    if not is_s3(dest):
        target = Path(dest)
        if target.exists() and not replace:
            raise StorageError(f"refusing to overwrite existing {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        old = staging.with_name(staging.name + ".old")
        try:
            shutil.copytree(src, staging, dirs_exist_ok=True)
            if target.exists():
                target.rename(old)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if old.exists() and not target.exists():
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    bucket, key = split_s3(dest)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if marker:
        files = [p for p in files if p.name != marker] + [src / marker]
    client = s3_client()
    with s3_errors(dest):
        for p in files:
            rel = p.relative_to(src).as_posix()
            client.upload_file(str(p), bucket, f"{key.rstrip('/')}/{rel}")


def download_dir(prefix: str, local_dir: str | Path) -> Path:
    """Copy every object under ``prefix`` into ``local_dir`` (a local ``prefix`` is copied too)."""
    out = Path(local_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not is_s3(prefix):
        shutil.copytree(prefix, out, dirs_exist_ok=True)
        return out
    bucket, key = split_s3(prefix)
    base = key.rstrip("/") + "/"
    client = s3_client()
    with s3_errors(prefix):
        for uri in list_uris(prefix):
            _, k = split_s3(uri)
            rel = k[len(base) :] if k.startswith(base) else Path(k).name
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, k, str(target))
    return out
