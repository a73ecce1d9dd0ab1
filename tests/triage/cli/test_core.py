"""The `triage` CLI end to end on small real files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import read_rows
from triage.cli import app

runner = CliRunner()


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.usefixtures("encoder_path")
def test_train_then_predict(tmp_path: Path, shared_data: Path) -> None:
    rows = read_rows(shared_data / "pubhealthqa" / "train.jsonl")
    data = _write(tmp_path / "train.jsonl", [{"text": r["text"], "field": r["field"]} for r in rows[:200]])
    res = runner.invoke(app, ["train", "--data", str(data), "--label-field", "field", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["n_train"] == 200
    inp = _write(tmp_path / "in.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(rows[200:210])])
    res = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path / "m"),
            "--input",
            str(inp),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--top-k",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    out = _read(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == list(range(10))
    assert all(len(r["predictions"]) == 2 for r in out)  # type: ignore[arg-type]
    assert all(r["predictions"][0]["score"] >= r["predictions"][1]["score"] for r in out)  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.usefixtures("encoder_path")
def test_train_with_a_fine_tuned_encoder_then_predict(tmp_path: Path, shared_data: Path) -> None:
    rows = read_rows(shared_data / "uit_vsfc" / "train.jsonl", 90)
    data = _write(tmp_path / "train.jsonl", [{"text": r["text"], "topic": r["topic"]} for r in rows[:80]])
    args = ["train", "--data", str(data), "--label-field", "topic", "--out", str(tmp_path / "m")]
    res = runner.invoke(app, [*args, "--finetune-encoder", "--epochs", "1", "--members", "2"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["kind"] == "tuned_router" and manifest["n_train"] == 80 and manifest["members"] == 2
    assert manifest["finetune"]["epochs"] == 1
    assert all((tmp_path / "m" / f"encoder-{m}" / "head.npz").exists() for m in (0, 1))
    assert runner.invoke(app, [*args, "--finetune-encoder", "--members", "0"]).exit_code != 0
    inp = _write(tmp_path / "in.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(rows[80:])])
    res = runner.invoke(
        app, ["predict", "--model", str(tmp_path / "m"), "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]
    )
    assert res.exit_code == 0, res.output
    out = _read(tmp_path / "o.jsonl")
    assert [r["id"] for r in out] == list(range(10))
    labels = set(manifest["classes"])
    for r in out:
        preds = r["predictions"]
        assert isinstance(preds, list) and len(preds) == 3 and {p["label"] for p in preds} <= labels


@pytest.mark.usefixtures("encoder_path")
def test_route_text_and_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["route", "--text", "Xin hỏi thủ tục cấp đổi giấy phép lái xe ô tô"])
    assert res.exit_code == 0, res.output
    preds = json.loads(res.stdout)
    assert len(preds) == 3 and all(set(p) == {"label", "score", "code", "unit", "reason"} for p in preds)
    assert preds[0]["label"] == "Bộ Công an" and preds[0]["reason"].startswith("Thủ tục: ")  # licences: since 2025
    inp = _write(
        tmp_path / "in.jsonl", [{"text": "Trường học thiếu giáo viên tiếng Anh"}, {"text": "Thuế đất quá cao"}]
    )
    res = runner.invoke(app, ["route", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0, res.output
    out = _read(tmp_path / "o.jsonl")
    assert len(out) == 2 and out[0]["text"] == "Trường học thiếu giáo viên tiếng Anh"


@pytest.mark.usefixtures("encoder_path")
def test_similar_adds_scores(tmp_path: Path, shared_data: Path) -> None:
    rows = read_rows(shared_data / "vnpara" / "pairs.jsonl", 6)
    inp = _write(tmp_path / "pairs.jsonl", rows)
    res = runner.invoke(app, ["similar", "--input", str(inp), "--output", str(tmp_path / "s.jsonl")])
    assert res.exit_code == 0, res.output
    out = _read(tmp_path / "s.jsonl")
    assert len(out) == 6 and all(-1.0 <= float(r["score"]) <= 1.0 for r in out)  # type: ignore[arg-type]
    assert out[0]["paraphrase"] == rows[0]["paraphrase"]  # other fields kept
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in out)  # type: ignore[arg-type]
    assert all(isinstance(r["likely_duplicate"], bool) for r in out)


@pytest.mark.usefixtures("encoder_path")
def test_similar_judges_the_same_matter_or_the_cosine(tmp_path: Path) -> None:
    rows = [
        {
            "text1": "Thủ tục cấp mới Giấy phép lái xe được thực hiện như thế nào?",
            "text2": "Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào?",
        }
    ]
    inp = _write(tmp_path / "pairs.jsonl", rows)
    res = runner.invoke(app, ["similar", "--input", str(inp), "--output", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 0, res.output
    judged = _read(tmp_path / "p.jsonl")[0]
    assert float(judged["score"]) > 0.9 and float(judged["probability"]) < 0.9 and judged["likely_duplicate"] is False
    args = ["similar", "--input", str(inp), "--output", str(tmp_path / "c.jsonl"), "--scorer", "cosine"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cosine = _read(tmp_path / "c.jsonl")[0]
    assert cosine["probability"] is None and cosine["likely_duplicate"] is True  # 0.95 >= 0.9298


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "a"}\nnot json\n', encoding="utf-8")
    res = runner.invoke(
        app, ["train", "--data", str(bad), "--label-field", "label", "--out", str(tmp_path / "m"), "--no-embeddings"]
    )
    assert res.exit_code == 2
    assert "bad.jsonl:2" in res.output
    res = runner.invoke(app, ["route"])
    assert res.exit_code == 2 and "exactly one" in res.output
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "ok"}\n', encoding="utf-8")
    res = runner.invoke(
        app, ["predict", "--model", str(tmp_path / "none"), "--input", str(rows), "--output", str(tmp_path / "o.jsonl")]
    )
    # The missing model says how to make one (rich may wrap the line anywhere a space is).
    assert res.exit_code == 2 and "no router at" in " ".join(res.output.split())
    assert "triage train" in " ".join(res.output.split())


def test_bench_outside_a_checkout_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel has no `benchmarks` package: away from a checkout, `triage bench` says where it runs."""
    monkeypatch.setitem(sys.modules, "benchmarks", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "benchmarks.run", None)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["bench", "--quick"])
    assert res.exit_code == 2, res.output
    assert "source checkout" in res.output and "make bench" in res.output
