"""The training set from reviewed labels: de-duplication, seed rows, and the frozen evaluation slice."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.training.conftest import T0, add_labels
from training.dataset import build_dataset, grow_eval_slice, slice_keys, text_key
from triage.store.db import Database


def test_text_key_ignores_case_spacing_and_unicode_form() -> None:
    assert text_key("Hoàn  thuế TNCN") == text_key("hoa\u0300n thuế tncn ")
    assert text_key("hoàn thuế") != text_key("hoàn thuê")


def test_latest_label_per_text_wins_and_duplicates_are_counted(empty_db: Database) -> None:
    add_labels(empty_db, [("Hoàn thuế chậm", "BTC"), ("Đường hỏng", "BXD")])
    add_labels(empty_db, [("hoàn   THUẾ chậm", "BYT")], start=T0 + timedelta(days=1))
    with empty_db.read() as s:
        ds = build_dataset(s)
    assert sorted((r.text, r.agency) for r in ds.train) == [("hoàn THUẾ chậm", "BYT"), ("Đường hỏng", "BXD")]
    assert ds.duplicates_dropped == 1
    assert ds.train[0].reviewer.startswith("clerk-")


def test_seed_rows_fill_in_but_never_override_a_clerk(empty_db: Database, tmp_path: Path) -> None:
    add_labels(empty_db, [("Hoàn thuế chậm", "BTC")])
    seed = tmp_path / "seed.jsonl"
    rows = [{"text": "hoàn thuế chậm", "agency": "Bộ Y tế"}, {"text": "Trường học xuống cấp", "agency": "Bộ GD&ĐT"}]
    seed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    with empty_db.read() as s:
        ds = build_dataset(s, seed=seed)
    assert {(r.agency, r.source) for r in ds.train} == {("BTC", "reviewed"), ("BGDDT", "seed:seed.jsonl")}
    assert ds.summary()["n_train_seed"] == 1 and ds.summary()["seed"] == str(seed)


def test_eval_slice_is_stratified_frozen_and_grows_only_on_command(empty_db: Database) -> None:
    rows = [(f"Câu hỏi thuế số {i}", "BTC") for i in range(20)] + [(f"Câu hỏi y tế số {i}", "BYT") for i in range(10)]
    rows += [("Một câu duy nhất về quốc phòng", "BQP")]
    add_labels(empty_db, rows)
    with empty_db.session() as s:
        added = grow_eval_slice(s, fraction=0.2, actor="admin")
    assert added == {"BTC": 4, "BYT": 2}  # the lone BQP text stays trainable
    with empty_db.read() as s:
        first = slice_keys(s)
        ds = build_dataset(s)
    assert len(ds.eval) == 6 and len(ds.train) == 25
    assert not {r.key for r in ds.train} & first

    # New labels (and a re-label of a frozen text) do not change the slice until someone grows it.
    frozen_text = next(r.text for r in ds.eval if r.agency == "BTC")
    later = [(f"Câu hỏi thuế mới {i}", "BTC") for i in range(10)] + [(frozen_text, "BYT")]
    add_labels(empty_db, later, start=T0 + timedelta(days=2))
    with empty_db.read() as s:
        ds2 = build_dataset(s)
        assert slice_keys(s) == first
    assert len(ds2.eval) == 6 and frozen_text not in {r.text for r in ds2.train}
    assert next(r.agency for r in ds2.eval if r.text == frozen_text) == "BYT"  # evaluated on the latest label

    with empty_db.session() as s:
        grow_eval_slice(s, fraction=0.2, actor="admin")
    with empty_db.read() as s:
        grown = slice_keys(s)
    assert first < grown  # only ever grows
    # BTC: 20 % of 30 = 6, 3 frozen already (one frozen text is now labelled BYT) -> 3 more; BYT has enough.
    assert len(grown) == 9
