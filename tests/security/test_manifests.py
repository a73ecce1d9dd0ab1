"""Model folders list the SHA-256 of their files; a folder that differs is refused before anything is unpickled."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from triage.config import get_settings
from triage.errors import ModelIncompatible
from triage.nlp import artifacts
from triage.nlp.duplicates import DuplicateIndex
from triage.nlp.manifest import FILES, MANIFEST, seal
from triage.nlp.router import ESTIMATOR_FILE, Router

TEXTS = [
    "Đường ngập nước sau mưa lớn",
    "Cống thoát nước bị tắc",
    "Mặt đường hư hỏng nặng",
    "Đèn đường không sáng",
    "Hồ sơ thuế chậm giải quyết",
    "Hoàn thuế thu nhập cá nhân chậm",
    "Quyết toán thuế doanh nghiệp",
    "Hóa đơn điện tử lỗi khi khai thuế",
] * 3
LABELS = ["giao_thong"] * 4 + ["thue"] * 4
LABELS = LABELS * 3


class _Payload:
    """What an attacker pickles: unpickling it creates a file (code ran in the service)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    folder = tmp_path / "router"
    Router(use_chars=False, C=1.0, calibration_folds=2).fit(TEXTS, LABELS).save(folder)
    return folder


def test_a_saved_router_lists_its_files_and_loads(saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST).read_text())
    assert set(manifest[FILES]) == {ESTIMATOR_FILE} and len(manifest[FILES][ESTIMATOR_FILE]) == 64
    assert artifacts.load(saved).predict(["Ngập nước trên đường"])[0] in {"giao_thong", "thue"}


def test_a_swapped_pickle_is_refused_before_it_is_opened(
    saved: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "code-ran"
    (saved / ESTIMATOR_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    with caplog.at_level(logging.ERROR), pytest.raises(ModelIncompatible, match="changed since it was saved"):
        Router.load(saved)
    assert not marker.exists()  # the old loader unpickled it: the attacker's code ran
    assert any(
        "refusing to load the router" in r.getMessage() and ESTIMATOR_FILE in r.getMessage() for r in caplog.records
    )


def test_an_unsigned_folder_and_an_unlisted_file_are_refused(saved: Path) -> None:
    (saved / "extra.joblib").write_bytes(b"x")
    with pytest.raises(ModelIncompatible, match="not listed"):
        artifacts.load(saved)
    (saved / "extra.joblib").unlink()
    manifest = json.loads((saved / MANIFEST).read_text())
    del manifest[FILES]
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelIncompatible, match="unsigned"):
        artifacts.load(saved)
    assert seal(saved)  # what `triage build-models` does for a folder built on this machine before the lists
    artifacts.load(saved)


def test_a_duplicate_index_with_edited_tombstones_is_refused(tmp_path: Path) -> None:
    index = DuplicateIndex(4)
    index.add([1, 2], np.eye(2, 4, dtype=np.float32))
    index.remove([2])
    index.save(tmp_path / "idx")
    assert DuplicateIndex.load(tmp_path / "idx").search(np.eye(1, 4, dtype=np.float32), 2)[0]
    np.save(tmp_path / "idx" / "tombstones.npy", np.asarray([1], dtype=np.int64))
    with pytest.raises(ModelIncompatible):
        DuplicateIndex.load(tmp_path / "idx")


def test_the_default_moderator_loads_once_listed(tmp_path: Path) -> None:
    source = get_settings().model_dir / "moderation"
    if not (source / MANIFEST).exists():
        pytest.skip(f"no default moderator at {source} (built by `triage build-models`)")
    copy = tmp_path / "moderation"
    shutil.copytree(source, copy)
    seal(copy)  # a no-op when build-models already listed its files
    assert artifacts.load(copy, kinds=("moderator",)) is not None
