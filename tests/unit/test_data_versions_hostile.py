"""Version ids are plain names, and staging copies a SIGKILL left behind are not versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aidetect.data.versions import ingest, list_versions, open_version
from aidetect.errors import DataError
from tests.unit.test_data_versions import make_tree


@pytest.mark.parametrize("ref", ["../x", "../ds2/" + "a" * 16, "a/b", "/etc", ".hidden", "x\0y", "é"])
def test_a_version_id_that_is_a_path_is_refused(tmp_path: Path, ref: str) -> None:
    root = tmp_path / "ds"
    vid = ingest(str(make_tree(tmp_path / "a", {"REAL": 2, "FAKE": 2})), root=str(root)).version_id
    shutil.copytree(root / vid, tmp_path / "x")  # a real version just outside the root
    with pytest.raises(DataError, match="is not a version id"):
        open_version(ref, root=str(root))


def test_a_staging_folder_left_by_a_kill_is_not_listed_or_opened(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    vid = ingest(str(make_tree(tmp_path / "a", {"REAL": 2, "FAKE": 2})), root=str(root)).version_id
    # publish_dir copies into ".<id>.<random>" and renames; a SIGKILL between the two leaves this
    shutil.copytree(root / vid, root / f".{vid}.k1ll3d")
    assert [m["version_id"] for m in list_versions(str(root))] == [vid]
    assert open_version(vid[:6], root=str(root)).version_id == vid  # the prefix is not ambiguous
    with pytest.raises(DataError, match="is not a version id"):
        open_version(f".{vid}.k1ll3d", root=str(root))
