"""Fine-tune the sentence encoder on labelled texts, on CPU, into a new sentence-transformers folder.

Frozen e5 embeddings encode general meaning; a few epochs of supervised training pull texts of the
same label together, which the Router's linear SVM then separates more easily. The objective is a
cosine softmax head on the *normalised* mean-pooled embedding: that is exactly the vector the
Router and the ONNX graph see, so whatever the head learns transfers to them without a mismatch.

The output folder has the base folder's layout (modules, pooling, normalisation, prompts,
tokenizer), the fine-tuned ``BertModel`` weights, the int8 ONNX fast path and a manifest whose id
says which base, data and parameters produced it. The trained head is kept in ``head.npz`` so the
encoder can also classify on its own (``head_logits``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import InvalidInput, ModelMissing
from triage.nlp.manifest import ENCODER, write_manifest
from triage.nlp.onnx_encoder import export_onnx
from triage.nlp.router import data_hash

HEAD_FILE = "head.npz"
HEAD_SCALE = 20.0  # cosine logits live in [-1, 1]; the scale lets softmax become confident
HEAD_LR_FACTOR = 20.0  # a fresh head must move much faster than pretrained weights
WARMUP_FRACTION = 0.1
# Everything in a sentence-transformers folder except the weights, which are saved anew.
_COPIED = (
    "modules.json",
    "1_Pooling",
    "2_Normalize",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
)


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _fingerprint(base_id: str, texts: Sequence[str], labels: Sequence[str], params: dict[str, Any]) -> str:
    """Same base, data and parameters -> same id, so a rerun is recognisable as a rerun."""
    h = hashlib.sha256()
    h.update(base_id.encode())
    h.update(data_hash(texts, labels).encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:10]


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: random order, but little padding (CPU time is padding)."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 32
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def finetune_encoder(
    base: Path,
    texts: list[str],
    labels: list[str],
    out: Path,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_length: int = 128,
    seed: int = 0,
    threads: int = 0,
    train_layers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune a copy of the encoder at ``base`` to separate ``labels``; write it to ``out``.

    Texts get the folder's "query: " prompt, as at inference. The embedding layer (250k pieces,
    ~80% of the weights) stays frozen: a few thousand texts cannot train it, and its optimiser
    state would cost ~1 GB and most of each step. Only the top ``train_layers`` transformer layers
    train (0: all): on CPU the backward pass through the lower layers costs about as much as
    their forward pass, for little gain on a small labelled set. Deterministic for a given
    ``seed`` and thread count (``threads=0``: all cores; on a shared machine pass fewer, because
    oversubscribed torch threads slow down several times). ``progress(step, total_steps)`` is
    called after every optimiser step.

    Returns ``out``. Raises ``InvalidInput`` for bad data or parameters and ``ModelMissing`` when
    ``base`` is not a sentence-transformers folder.
    """
    base, out = Path(base), Path(out)
    if not (base / "modules.json").exists() or not (base / "config.json").exists():
        raise ModelMissing(f"no sentence-transformers encoder at {base}")
    if len(texts) != len(labels):
        raise InvalidInput(f"{len(texts)} texts but {len(labels)} labels")
    if any(not isinstance(t, str) for t in texts):
        raise InvalidInput("texts must be str")
    classes = sorted({str(y) for y in labels})
    if len(classes) < 2:
        raise InvalidInput("need at least two distinct labels to fine-tune")
    if epochs < 1 or batch_size < 1 or lr <= 0 or max_length < 8 or train_layers < 0:
        raise InvalidInput("epochs, batch_size >= 1; lr > 0; max_length >= 8; train_layers >= 0")

    # Deferred: torch and transformers cost seconds and only fine-tuning needs them (serving uses ONNX).
    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoModel

    torch.manual_seed(seed)
    torch.set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))
    rng = np.random.default_rng(seed)

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    pad_id = tok.token_to_id("<pad>") or 1
    base_manifest = _read_json(base / "manifest.json")
    prompts = {
        str(k): str(v) for k, v in _read_json(base / "config_sentence_transformers.json").get("prompts", {}).items()
    }
    prefix = prompts.get("query", "")
    ids_list = [e.ids for e in tok.encode_batch([prefix + t for t in texts])]
    lengths = np.asarray([len(i) for i in ids_list])
    index = {c: i for i, c in enumerate(classes)}
    y_all = torch.tensor([index[str(v)] for v in labels], dtype=torch.long)

    bert = AutoModel.from_pretrained(base, local_files_only=True)
    layers = bert.encoder.layer
    n_train = len(layers) if train_layers == 0 else min(train_layers, len(layers))
    frozen = [bert.embeddings, *layers[: len(layers) - n_train]]
    for module in frozen:
        module.requires_grad_(False)
    if bert.pooler is not None:
        bert.pooler.requires_grad_(False)  # unused by mean pooling; training it would only add work
    trainable = [p for p in bert.parameters() if p.requires_grad]
    head = torch.nn.Parameter(torch.randn(len(classes), bert.config.hidden_size) * 0.02)
    optim = torch.optim.AdamW(
        [{"params": trainable, "lr": lr}, {"params": [head], "lr": lr * HEAD_LR_FACTOR}],
        weight_decay=0.01,
    )
    steps_per_epoch = -(-len(texts) // batch_size)
    total = steps_per_epoch * epochs
    warmup = max(1, int(WARMUP_FRACTION * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )

    def embed(rows: np.ndarray) -> torch.Tensor:
        width = int(lengths[rows].max())
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, : lengths[r]] = torch.tensor(ids_list[r])
        mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths[rows])[:, None]).long()
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=1)

    bert.train()
    for module in frozen:
        module.eval()  # a frozen feature extractor: no dropout noise below the trained layers
    started, step, losses = time.perf_counter(), 0, []
    for _epoch in range(epochs):
        for rows in _batches(lengths, batch_size, rng):
            logits = HEAD_SCALE * embed(rows) @ torch.nn.functional.normalize(head, dim=1).T
            loss = torch.nn.functional.cross_entropy(logits, y_all[torch.from_numpy(rows)])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*trainable, head], 1.0)
            optim.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if progress is not None:
                progress(step, total)
    train_seconds = time.perf_counter() - started

    params = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_length": max_length,
        "seed": seed,
        "train_layers": n_train,
        "objective": f"cosine softmax head (scale {HEAD_SCALE}), cross-entropy",
        "frozen": ["embeddings", *(f"encoder.layer.{i}" for i in range(len(layers) - n_train))],
    }
    base_id = str(base_manifest.get("id", base.name))
    model_id = f"{base_id}-ft-{_fingerprint(base_id, texts, [str(v) for v in labels], params)}"
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in _COPIED:
        src = base / name
        if src.is_dir():
            shutil.copytree(src, tmp / name)
        elif src.exists():
            shutil.copy2(src, tmp / name)
    bert.eval()
    bert.save_pretrained(tmp, safe_serialization=True)
    w = torch.nn.functional.normalize(head.detach(), dim=1).numpy().astype(np.float32)
    np.savez(tmp / HEAD_FILE, weight=w, scale=np.float32(HEAD_SCALE), classes=np.asarray(classes))

    manifest: dict[str, Any] = {
        "id": model_id,
        "base_id": base_id,
        "family": base_manifest.get("family"),
        "dimension": int(bert.config.hidden_size),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "finetune": {
            **params,
            "n_texts": len(texts),
            "classes": classes,
            "steps": total,
            "train_seconds": round(train_seconds, 1),
            "final_loss": round(float(np.mean(losses[-max(1, steps_per_epoch // 10) :])), 4),
            "threads": torch.get_num_threads(),
        },
        "pooling": "mean",
        "normalize": True,
        "prompts": prompts,
        "head": {"file": HEAD_FILE, "kind": "cosine", "scale": HEAD_SCALE},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    manifest["onnx"] = export_onnx(tmp)
    write_manifest(tmp, ENCODER, manifest)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def head_logits(folder: Path, embeddings: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Logits of the fine-tuned head for L2-normalised ``embeddings`` (from either backend)."""
    path = Path(folder) / HEAD_FILE
    if not path.exists():
        raise ModelMissing(f"no fine-tuned head at {path}")
    with np.load(path) as data:
        weight, scale, classes = data["weight"], float(data["scale"]), [str(c) for c in data["classes"]]
    return scale * np.asarray(embeddings, dtype=np.float32) @ weight.T, classes
