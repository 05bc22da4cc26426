"""Dataset versions from a class-per-folder source: ids, splits, reading back, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect.data.config import DataConfig
from aidetect.data.versions import ingest, list_versions, open_version
from aidetect.errors import ConfigError, DataError


def png(seed: int, size: int = 16, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def make_tree(root: Path, spec: dict[str, int], offset: int = 0) -> Path:
    """``{"REAL": 5, "train/FAKE": 3}`` -> that many distinct PNGs per folder."""
    seed = offset
    for folder, n in spec.items():
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (d / f"img_{i:03d}.png").write_bytes(png(seed))
            seed += 1
    return root


def test_ingest_folder_and_read_back(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"real": 20, "Fake": 20})
    root = str(tmp_path / "ds")
    res = ingest(str(src), root=root)
    assert res.created and len(res.version_id) == 16
    v = open_version(res.version_id, root=root)
    assert v.labels == ["REAL", "FAKE"]
    assert len(v.manifest) == 40
    assert set(v.manifest["label"]) == {"REAL", "FAKE"}
    assert set(v.manifest["split"]) <= {"train", "val", "test"}
    for col in ("sha256", "source", "content_class", "width", "height", "format", "mode", "nbytes"):
        assert col in v.manifest.columns
    assert (v.manifest["width"] == 16).all() and (v.manifest["format"] == "PNG").all()
    # bytes come back aligned with rows and match the manifest digests and the source files
    rows, images = v.rows("train"), v.read_images("train")
    assert len(rows) == len(images) > 0
    import hashlib

    for (_, row), data in zip(rows.iterrows(), images, strict=True):
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert (src / row["source"]).read_bytes() == data
    streamed = list(v.iter_images())
    assert len(streamed) == 40
    assert all(hashlib.sha256(b).hexdigest() == r["sha256"] for r, b in streamed)
    assert sum(sum(c.values()) for c in res.counts.values()) == 40


def test_same_content_same_id_and_nothing_written(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 6, "FAKE": 6})
    root = tmp_path / "ds"
    first = ingest(str(src), root=str(root))
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    # a copy of the same content elsewhere gives the same id and writes nothing
    import shutil

    shutil.copytree(src, tmp_path / "copy")
    again = ingest(str(tmp_path / "copy"), root=str(root))
    assert again.version_id == first.version_id and not again.created
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    # one changed image changes the id
    (src / "REAL" / "img_000.png").write_bytes(png(999))
    assert ingest(str(src), root=str(root)).version_id != first.version_id
    assert len(list_versions(str(root))) == 2


def test_splits_deterministic_and_duplicates_share_a_split(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 60, "FAKE": 60})
    dup = (src / "REAL" / "img_000.png").read_bytes()
    for i in range(5):
        (src / "REAL" / f"copy_{i}.png").write_bytes(dup)
    v = open_version(ingest(str(src), root=str(tmp_path / "ds")).version_id, root=str(tmp_path / "ds"))
    assert v.manifest.groupby("sha256")["split"].nunique().max() == 1
    assert (v.manifest["sha256"] == v.manifest["sha256"].iloc[0]).sum() >= 1
    counts = v.manifest["split"].value_counts()
    assert counts["train"] > counts.get("val", 0) and counts.get("val", 0) > 0


def test_source_splits_are_respected_and_conflicts_resolved(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"train/REAL": 30, "train/FAKE": 30, "test/REAL": 5, "Test/fake": 5})
    # the same image in train and test must end up in one split only (train: test stays clean)
    leaked = (src / "train" / "REAL" / "img_000.png").read_bytes()
    (src / "test" / "REAL" / "leaked.png").write_bytes(leaked)
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(src), root=root).version_id, root=root)
    m = v.manifest
    test_rows = m[m["source"].str.lower().str.startswith("test/")]
    assert set(test_rows[test_rows["source"] != "test/REAL/leaked.png"]["split"]) == {"test"}
    assert m.loc[m["source"] == "test/REAL/leaked.png", "split"].item() == "train"
    # source train had no val: val is carved out of it by hash
    train_rows = m[m["source"].str.startswith("train/")]
    assert set(train_rows["split"]) == {"train", "val"}


def test_synonyms_and_three_class_label_set(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"Authentic": 4, "AI_Generated": 4, "DeepFake": 4})
    cfg = DataConfig(labels=["real", "ai-generated", "deepfake"], synonyms={"real": ["authentic"]})
    cfg.validate()
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(src), root=root, config=cfg).version_id, root=root)
    assert v.labels == ["real", "ai-generated", "deepfake"]
    assert v.manifest["label"].value_counts().to_dict() == {"real": 4, "ai-generated": 4, "deepfake": 4}
    # the binary default maps common synonyms
    src2 = make_tree(tmp_path / "src2", {"human": 2, "Synthetic": 2}, offset=100)
    v2 = open_version(ingest(str(src2), root=root).version_id, root=root)
    assert sorted(v2.manifest["label"]) == ["FAKE", "FAKE", "REAL", "REAL"]


def test_conflicting_synonyms_are_a_config_error() -> None:
    from aidetect.data.labels import LabelMatcher

    with pytest.raises(ConfigError, match="maps to both"):
        LabelMatcher(["REAL", "FAKE"], {"REAL": ["photo"], "FAKE": ["photo"]})


def test_unknown_class_folder_fails_and_leaves_nothing(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 3, "FAKE": 3, "dogs": 1})
    root = tmp_path / "ds"
    with pytest.raises(DataError, match="unknown class 'dogs'"):
        ingest(str(src), root=str(root))
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.mkdir(), "no images found"),
        (lambda p: None, "source not found"),
        (lambda p: (p.mkdir(), (p / "x.png").write_bytes(png(1))), "not inside a class folder"),
        (lambda p: p.write_text("hello"), "unsupported source file"),
    ],
    ids=["empty", "missing", "no-class-folder", "plain-file"],
)
def test_bad_sources_give_one_clear_error(tmp_path: Path, setup, message: str) -> None:
    src = tmp_path / "src"
    setup(src)
    with pytest.raises(DataError, match=message):
        ingest(str(src), root=str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def test_corrupt_images_skipped_below_threshold_fatal_above(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 50, "FAKE": 49})
    good = png(5)
    (src / "FAKE" / "truncated.png").write_bytes(good[: len(good) // 2])
    root = str(tmp_path / "ds")
    res = ingest(str(src), root=root, config=DataConfig(max_corrupt_fraction=0.02))
    assert [s["source"] for s in res.skipped] == ["FAKE/truncated.png"]
    v = open_version(res.version_id, root=root)
    assert len(v.manifest) == 99 and v.meta["num_skipped"] == 1
    (src / "REAL" / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"2 of 101 images .* are unreadable"):
        ingest(str(src), root=root, config=DataConfig(max_corrupt_fraction=0.01))
    assert len(list_versions(root)) == 1


def test_open_version_by_prefix_and_errors(tmp_path: Path) -> None:
    root = str(tmp_path / "ds")
    vid = ingest(str(make_tree(tmp_path / "a", {"REAL": 2, "FAKE": 2})), root=root).version_id
    assert open_version(vid[:5], root=root).version_id == vid
    with pytest.raises(DataError, match="no dataset version 'zzz'"):
        open_version("zzz", root=root)
    with pytest.raises(DataError, match="unknown split"):
        open_version(vid, root=root).rows("holdout")


def test_default_root_is_under_home_and_metadata_is_complete(tmp_path: Path) -> None:
    res = ingest(str(make_tree(tmp_path / "a", {"REAL": 2, "FAKE": 2})))
    from aidetect import paths

    assert res.uri.startswith(paths.datasets_root())
    meta = json.loads(Path(res.uri, "version.json").read_text())
    assert meta["version_id"] == res.version_id and meta["labels"] == ["REAL", "FAKE"]
    assert meta["num_images"] == 4 and meta["shards"] == ["part-00000.parquet"]
    assert [m["version_id"] for m in list_versions()] == [res.version_id]


def test_duplicates_drop_policy_keeps_first_copy(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 4, "FAKE": 4})
    (src / "REAL" / "zz_copy.png").write_bytes((src / "REAL" / "img_001.png").read_bytes())
    res = ingest(str(src), root=str(tmp_path / "ds"), config=DataConfig(duplicates="drop"))
    assert res.duplicates_dropped == 1
    assert sum(sum(c.values()) for c in res.counts.values()) == 8


def test_shards_roll_over_and_read_back(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REAL": 10, "FAKE": 10})
    root = str(tmp_path / "ds")
    v = open_version(ingest(str(src), root=root, config=DataConfig(shard_max_bytes=2000)).version_id, root)
    assert v.manifest["shard"].nunique() > 2
    data = v.read_images()
    assert all((src / s).read_bytes() == b for s, b in zip(v.rows()["source"], data, strict=True))


def test_config_validation_names_field() -> None:
    with pytest.raises(ConfigError, match="split_fractions"):
        DataConfig(split_fractions={"train": 0.5, "val": 0.1}).validate()
    with pytest.raises(ConfigError, match="duplicates"):
        DataConfig(duplicates="maybe").validate()
    with pytest.raises(ConfigError, match="labels"):
        DataConfig(labels=["a", "A"]).validate()
