"""Embedders load local folders only and return normalised float32 rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triage.errors import InvalidInput, ModelMissing
from triage.nlp.embed import OnnxEmbedder, SentenceEmbedder, default_encoder_path, load_embedder


def test_missing_folder_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="build-models"):
        SentenceEmbedder(tmp_path / "nope")
    with pytest.raises(ModelMissing, match="build-models"):
        OnnxEmbedder(tmp_path)
    with pytest.raises(ModelMissing, match="build-models"):
        default_encoder_path(tmp_path)


def test_encode_shapes_and_norms(embedder: OnnxEmbedder) -> None:
    texts = ["Đường giao thông nông thôn xuống cấp", "Xin hỏi về chế độ thai sản", "ok"]
    v = embedder.encode(texts, batch_size=2)
    assert v.shape == (3, embedder.dimension) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert embedder.encode([]).shape == (0, embedder.dimension)


def test_batching_and_order_do_not_change_vectors(embedder: OnnxEmbedder) -> None:
    texts = ["Một câu ngắn.", "Một câu dài hơn nhiều về thủ tục đăng ký kinh doanh hộ cá thể tại phường.", "Thuế"]
    one_by_one = np.concatenate([embedder.encode([t]) for t in texts])
    batched = embedder.encode(texts, batch_size=3)
    # int8 activations are quantised per batch, so batch mates nudge a vector, but only slightly.
    cos = (one_by_one * batched).sum(axis=1)
    assert cos.min() >= 0.995
    again = embedder.encode(texts, batch_size=3)
    assert np.array_equal(batched, again)  # and deterministically


def test_paraphrase_closer_than_unrelated(embedder: OnnxEmbedder) -> None:
    a, b, c = embedder.encode(
        [
            "Tôi bị mất căn cước công dân, làm lại ở đâu?",
            "Thủ tục cấp lại thẻ căn cước khi bị mất như thế nào?",
            "Giá lúa vụ đông xuân năm nay giảm mạnh.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.05


def test_rejects_a_bare_string(embedder: OnnxEmbedder) -> None:
    with pytest.raises(InvalidInput):
        embedder.encode("not a list")


def test_load_embedder_backends(encoder_path: Path) -> None:
    assert isinstance(load_embedder(encoder_path, encoder_path, backend="onnx"), OnnxEmbedder)
    with pytest.raises(InvalidInput):
        load_embedder(encoder_path, encoder_path, backend="tpu")


@pytest.mark.slow
def test_any_local_sentence_transformers_folder_loads(encoder_path: Path, tmp_path: Path) -> None:
    """TRIAGE_ENCODER_PATH may point at another model (PhoBERT-based, bge-m3...): build a tiny one
    locally, save it as a sentence-transformers folder and load it with no network."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(encoder_path, local_files_only=True)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
    )
    (tmp_path / "hf").mkdir()
    bert.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    word = models.Transformer(str(tmp_path / "hf"), max_seq_length=64)
    st = SentenceTransformer(modules=[word, models.Pooling(16, "mean"), models.Normalize()], device="cpu")
    st.save(str(tmp_path / "tiny"))
    emb = load_embedder(tmp_path / "tiny", tmp_path, backend="onnx")  # no ONNX graph there: torch path
    assert isinstance(emb, SentenceEmbedder) and emb.dimension == 16
    v = emb.encode(["Xin chào", "Thủ tục hành chính"])
    assert v.shape == (2, 16) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


def test_batching_embedder_serves_concurrent_callers(embedder: OnnxEmbedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from triage.nlp.embed import BatchingEmbedder

    texts = [f"Kiến nghị số {i} về sửa đường liên xã và cầu dân sinh" for i in range(24)]
    batcher = BatchingEmbedder(embedder, max_batch=8, max_wait_ms=20)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: batcher.encode([t])[0], texts))
    direct = embedder.encode(texts)
    cos = (np.stack(got) * direct).sum(axis=1)
    assert cos.min() >= 0.995  # each caller got its own text's vector back
    assert batcher.encode(texts).shape == (24, embedder.dimension)  # larger jobs pass straight through
    with pytest.raises(InvalidInput):
        batcher.encode([1])  # type: ignore[list-item]


def test_batching_embedder_close_answers_pending_calls_and_stops_its_thread(embedder: OnnxEmbedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from triage.nlp.embed import BatchingEmbedder

    texts = [f"Phản ánh số {i} về rác thải ở khu dân cư" for i in range(16)]
    batcher = BatchingEmbedder(embedder, max_batch=4, max_wait_ms=50)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher.encode, [t]) for t in texts]
        batcher.close()
        got = [f.result(timeout=30) for f in futures]  # none is left waiting behind the close
    assert not batcher._worker.is_alive()  # the thread, and with it the model reference, is gone
    assert all(g.shape == (1, embedder.dimension) for g in got)
    after = batcher.encode([texts[0]])  # a late caller is served directly
    assert float((after[0] * embedder.encode([texts[0]])[0]).sum()) >= 0.995
    batcher.close()  # closing twice is harmless
