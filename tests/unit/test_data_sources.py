"""Zip and HF-style parquet sources, content classes, and their bad-input errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aidetect.data.config import DataConfig
from aidetect.data.content import cifake_class, content_classes
from aidetect.data.versions import ingest, open_version
from aidetect.errors import DataError
from tests.unit.test_data_versions import make_tree, png


def make_cifake_zip(path: Path, n: int = 6, prefix: str = "") -> Path:
    """A zip laid out like the Kaggle CIFAKE download: train/REAL, train/FAKE, '<i> (<k>).jpg'."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        seed = 0
        for label in ("REAL", "FAKE"):
            for i in range(n):
                name = f"{i}.jpg" if i % 3 == 0 else f"{i} ({i % 10 + 1}).jpg"
                zf.writestr(f"{prefix}train/{label}/{name}", png(seed))
                seed += 1
        zf.writestr(f"{prefix}README.txt", "not an image")
    return path


def test_cifake_content_classes() -> None:
    assert cifake_class("train/FAKE/12 (3).jpg") == "bird"
    assert cifake_class("train/REAL/7.jpg") == "airplane"
    assert cifake_class("train/REAL/7 (10).jpg") == "truck"
    assert cifake_class("real_0001.png") is None
    # plain numbered files are not CIFAKE unless some carry "(k)"
    assert content_classes(["a/1.jpg", "a/2.jpg"], "auto") == [None, None]
    assert content_classes(["a/1.jpg", "a/2 (2).jpg"], "auto") == ["airplane", "automobile"]
    assert content_classes(["a/1.jpg"], "cifake") == ["airplane"]
    assert content_classes(["a/1 (2).jpg"], "none") == [None]


def test_zip_read_in_place_like_cifake(tmp_path: Path) -> None:
    z = make_cifake_zip(tmp_path / "cifake.zip", n=30)
    root = str(tmp_path / "ds")
    res = ingest(str(z), root=root)
    assert res.ignored == ["README.txt"]
    v = open_version(res.version_id, root)
    m = v.manifest
    assert len(m) == 60 and v.meta["source_kind"] == "zip"
    assert m.loc[m["source"] == "train/FAKE/4 (5).jpg", "content_class"].item() == "deer"
    assert m.loc[m["source"] == "train/REAL/0.jpg", "content_class"].item() == "airplane"
    # only a train split in the source: val and test are carved out of it
    assert set(m["split"]) == {"train", "val", "test"}
    # the same files as a folder give the same version
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(z).extractall(folder)
    assert ingest(str(folder), root=root).version_id == res.version_id
    # a zip with a top-level folder works too
    assert ingest(str(make_cifake_zip(tmp_path / "nested.zip", prefix="cifake/")), root=root).created


def test_bad_zip_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="not a valid zip archive"):
        ingest(str(bad), root=str(tmp_path / "ds"))
    with pytest.raises(DataError, match="source not found"):
        ingest(str(tmp_path / "missing.zip"), root=str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def hf_table(n: int, *, int_labels: bool = False, struct: bool = True, offset: int = 0) -> pa.Table:
    images = [png(offset + i) for i in range(n)]
    labels = [i % 2 for i in range(n)] if int_labels else ["REAL" if i % 2 == 0 else "FAKE" for i in range(n)]
    if struct:
        image_col = pa.array(
            [{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(images)],
            pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
        )
    else:
        image_col = pa.array(images, pa.binary())
    origin = pa.array(["coco" if i % 2 == 0 else "diffusiondb" for i in range(n)])
    return pa.table({"image": image_col, "label": pa.array(labels), "source": origin})


def with_hf_names(table: pa.Table, names: list[str]) -> pa.Table:
    meta = {"info": {"features": {"label": {"names": names, "_type": "ClassLabel"}}}}
    return table.replace_schema_metadata({b"huggingface": json.dumps(meta).encode()})


def test_parquet_struct_images_string_labels_and_origin(tmp_path: Path) -> None:
    pq.write_table(hf_table(20), tmp_path / "dev.parquet")
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(tmp_path / "dev.parquet"), root=root).version_id, root)
    assert v.meta["source_kind"] == "parquet"
    assert v.manifest["label"].value_counts().to_dict() == {"REAL": 10, "FAKE": 10}
    assert v.manifest["origin"].value_counts().to_dict() == {"coco": 10, "diffusiondb": 10}
    assert v.manifest["source"].iloc[3] == "dev.parquet#3"
    assert v.read_images()[3] == png(3)


def test_parquet_int_labels_from_hf_metadata_or_config(tmp_path: Path) -> None:
    table = hf_table(10, int_labels=True, struct=False)
    pq.write_table(with_hf_names(table, ["real", "fake"]), tmp_path / "meta.parquet")
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(tmp_path / "meta.parquet"), root=root).version_id, root)
    assert v.manifest["label"].tolist()[:2] == ["REAL", "FAKE"]

    pq.write_table(table, tmp_path / "plain.parquet")
    with pytest.raises(DataError, match=r"integer labels .* no class names"):
        ingest(str(tmp_path / "plain.parquet"), root=root)
    cfg = DataConfig(label_names=["fake", "real"])  # index 0 = fake here
    v2 = open_version(ingest(str(tmp_path / "plain.parquet"), root=root, config=cfg).version_id, root)
    assert v2.manifest["label"].tolist()[:2] == ["FAKE", "REAL"]


def test_parquet_folder_of_shards_with_split_names(tmp_path: Path) -> None:
    d = tmp_path / "hf" / "data"
    d.mkdir(parents=True)
    pq.write_table(hf_table(20), d / "train-00000-of-00002.parquet")
    pq.write_table(hf_table(10, offset=100), d / "train-00001-of-00002.parquet")
    pq.write_table(hf_table(6, offset=200), d / "test-00000-of-00001.parquet")
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(tmp_path / "hf"), root=root).version_id, root)
    m = v.manifest
    assert len(m) == 36
    assert set(m.loc[m["source"].str.startswith("data/test-"), "split"]) == {"test"}
    assert set(m.loc[m["source"].str.startswith("data/train-"), "split"]) == {"train", "val"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"pixels": [1, 2], "label": ["REAL", "FAKE"]}), "no image column"),
        (pa.table({"image": pa.array([b"x", b"y"]), "kind": ["REAL", "FAKE"]}), "no label column 'label'"),
        (pa.table({"image": pa.array([b"x", b"y"]), "label": [0.5, 1.5]}), "label column 'label' has type"),
    ],
    ids=["no-image-column", "no-label-column", "float-labels"],
)
def test_malformed_parquet_schema(tmp_path: Path, table: pa.Table, message: str) -> None:
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=message):
        ingest(str(tmp_path / "bad.parquet"), root=str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def test_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "fake.parquet").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a readable parquet file"):
        ingest(str(tmp_path / "fake.parquet"), root=str(tmp_path / "ds"))


def test_unknown_parquet_label_is_named(tmp_path: Path) -> None:
    t = pa.table({"image": pa.array([png(1), png(2)]), "label": ["REAL", "cartoon"]})
    pq.write_table(t, tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"unknown class 'cartoon' in .*x.parquet#1"):
        ingest(str(tmp_path / "x.parquet"), root=str(tmp_path / "ds"))


def test_non_image_files_are_listed_not_fatal(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 3, "FAKE": 3})
    (src / "REAL" / "notes.txt").write_text("hello")
    (src / ".DS_Store").write_text("junk")
    res = ingest(str(src), root=str(tmp_path / "ds"))
    assert res.ignored == ["REAL/notes.txt"]
