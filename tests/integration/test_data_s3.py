"""Sources and dataset versions on a real S3-compatible server (moto_server on loopback)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from aidetect import storage
from aidetect.cli import main
from aidetect.data.config import ValidationConfig
from aidetect.data.validation import validate_version
from aidetect.data.validation_report import write_reports
from aidetect.data.versions import ingest, list_versions, open_version
from aidetect.errors import DataError, ServiceUnavailableError, StorageError
from tests.conftest import point_s3_at
from tests.helpers import servers
from tests.unit.test_data_sources import hf_table
from tests.unit.test_data_versions import png


def _bucket(name: str) -> object:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    return s3


def _upload_tree(s3, bucket: str, prefix: str, spec: dict[str, int]) -> dict[str, bytes]:
    files = {}
    seed = 0
    for folder, n in spec.items():
        for i in range(n):
            key = f"{prefix}/{folder}/img_{i:03d}.png"
            files[key] = png(seed)
            s3.put_object(Bucket=bucket, Key=key, Body=files[key])
            seed += 1
    return files


def test_ingest_s3_folder_into_s3_root_and_read_back(s3_env: str, tmp_path: Path) -> None:
    s3 = _bucket("src-folder")
    files = _upload_tree(
        s3, "src-folder", "raw", {"train/REAL": 12, "train/FAKE": 12, "test/real": 3, "test/fake": 3}
    )
    _bucket("datasets")
    root = "s3://datasets/versions"
    res = ingest("s3://src-folder/raw", root=root)
    assert res.created and res.uri == f"{root}/{res.version_id}"
    assert set(res.counts["test"].values()) == {3}
    keys = [u.rsplit("/", 1)[-1] for u in storage.list_uris(res.uri)]
    assert {"version.json", "manifest.parquet", "part-00000.parquet"} <= set(keys)

    assert [m["version_id"] for m in list_versions(root)] == [res.version_id]
    v = open_version(res.version_id[:6], root)
    data = v.read_images("test")
    assert sorted(data) == sorted(b for k, b in files.items() if "/test/" in k)
    streamed = dict((r["source"], b) for r, b in v.iter_images())
    assert streamed["train/REAL/img_000.png"] == files["raw/train/REAL/img_000.png"]

    again = ingest("s3://src-folder/raw", root=root)
    assert not again.created and again.version_id == res.version_id

    result = validate_version(v, config=ValidationConfig())
    assert result.success and result.decode["checked"] == 30
    written = write_reports(result, "s3://datasets/reports/run-1")
    assert json.loads(storage.read_bytes(written["json"]))["version_id"] == res.version_id
    assert storage.read_bytes(written["markdown"]).startswith(b"# Data validation")


def test_ingest_s3_zip_and_parquet(s3_env: str, tmp_path: Path) -> None:
    s3 = _bucket("src-files")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(8):
            zf.writestr(f"train/REAL/{i} (2).jpg", png(i))
            zf.writestr(f"train/FAKE/{i} (3).jpg", png(100 + i))
    s3.put_object(Bucket="src-files", Key="cifake/cifake.zip", Body=buf.getvalue())
    pq.write_table(hf_table(10), tmp_path / "dev.parquet")
    s3.upload_file(str(tmp_path / "dev.parquet"), "src-files", "hf/data/train-00000-of-00001.parquet")
    root = str(tmp_path / "ds")

    z = open_version(ingest("s3://src-files/cifake/cifake.zip", root=root).version_id, root)
    assert len(z.manifest) == 16 and set(z.manifest["content_class"]) == {"automobile", "bird"}
    p = open_version(ingest("s3://src-files/hf", root=root).version_id, root)
    assert len(p.manifest) == 10 and set(p.manifest["origin"]) == {"coco", "diffusiondb"}
    assert p.meta["source_kind"] == "s3-prefix"


def test_s3_errors_are_one_line(s3_env: str, tmp_path: Path) -> None:
    root = str(tmp_path / "ds")
    with pytest.raises(StorageError, match="not found: s3://no-such-bucket"):
        ingest("s3://no-such-bucket/x", root=root)
    _bucket("empty-bucket")
    with pytest.raises(DataError, match="source not found or empty"):
        ingest("s3://empty-bucket/nothing", root=root)
    with pytest.raises(StorageError, match="not found"):
        ingest("s3://empty-bucket/missing.zip", root=root)
    assert not Path(root).exists()


def test_partial_s3_version_without_marker_is_invisible(s3_env: str, tmp_path: Path) -> None:
    s3 = _bucket("partial")
    _upload_tree(s3, "partial", "raw", {"REAL": 3, "FAKE": 3})
    res = ingest("s3://partial/raw", root="s3://partial/ds")
    # simulate an interrupted upload of another version: everything but version.json
    for uri in storage.list_uris(res.uri):
        if not uri.endswith("version.json"):
            _, key = storage.split_s3(uri)
            s3.copy_object(
                Bucket="partial",
                Key=key.replace(res.version_id, "deadbeefdeadbeef"),
                CopySource={"Bucket": "partial", "Key": key},
            )
    assert [m["version_id"] for m in list_versions("s3://partial/ds")] == [res.version_id]
    with pytest.raises(DataError, match="no dataset version 'deadbeef'"):
        open_version("deadbeef", "s3://partial/ds")


def test_unreachable_endpoint(s3_unreachable: str, tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailableError, match="S3 endpoint unreachable"):
        ingest("s3://bucket/prefix", root=str(tmp_path / "ds"))
    result = CliRunner().invoke(
        main, ["data", "ingest", "s3://bucket/prefix", "--root", str(tmp_path / "ds")]
    )
    assert result.exit_code != 0 and result.output.startswith("error: S3 endpoint unreachable")
    assert "Traceback" not in result.output


def test_access_denied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A second moto_server with IAM authentication on (after the readiness probe): unknown keys get 403."""
    port = servers.free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [servers.tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with servers.running(cmd, url, tmp_path / "moto-auth.log", env={"INITIAL_NO_AUTH_ACTION_COUNT": "1"}):
        point_s3_at(monkeypatch, url, key="AKIAUNKNOWNKEY000000", secret="wrong")
        try:
            with pytest.raises(StorageError, match="access denied to s3://locked/data"):
                ingest("s3://locked/data", root=str(tmp_path / "ds"))
        finally:
            storage._client.cache_clear()
    assert not (tmp_path / "ds").exists()
