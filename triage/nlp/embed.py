"""Sentence embeddings from a local folder, never from the network.

``SentenceEmbedder`` wraps any sentence-transformers folder (e5, PhoBERT-based, bge-m3 ...) with
``local_files_only``; ``OnnxEmbedder`` is the int8 fast path for folders built by
``triage build-models``. Both return float32 (n, d) L2-normalised rows.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from triage.errors import InvalidInput, ModelMissing
from triage.nlp.onnx_encoder import INT8_NAME, ONNX_DIR

BUILD_HINT = "build it with `triage build-models` (or `make models`)"


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors."""

    dimension: int
    model_id: str

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, prompt_name: str = "query") -> np.ndarray: ...


def _threads(n: int) -> int:
    return n if n > 0 else (os.cpu_count() or 1)


def _prompts(path: Path) -> dict[str, str]:
    """The folder's named prompts (e5: "query: " / "passage: "); models without them get none."""
    cfg = path / "config_sentence_transformers.json"
    if cfg.exists():
        return {str(k): str(v) for k, v in json.loads(cfg.read_text()).get("prompts", {}).items()}
    return {}


def _model_id(path: Path) -> str:
    manifest = path / "manifest.json"
    if manifest.exists():
        return str(json.loads(manifest.read_text()).get("id", path.name))
    return path.name


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInput("encode() takes a sequence of texts, not a single string")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise InvalidInput(f"texts must be str, got {type(t).__name__}")
    return out


class _Shared:
    """sklearn's ``clone`` of an estimator holding an encoder shares the encoder instead of deep-copying
    it: a loaded model (an ONNX session, a batching thread) is a read-only resource, not a learned parameter.
    """

    def __sklearn_clone__(self) -> Self:
        return self


class SentenceEmbedder(_Shared):
    """A sentence-transformers folder on torch (the fp32 reference path)."""

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        path = Path(path)
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelMissing(f"no sentence-transformers model at {path}; {BUILD_HINT}")
        # Deferred: torch and sentence-transformers cost seconds; serving uses the ONNX path.
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(_threads(threads))
        self.path = path
        self.model_id = _model_id(path)
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._prompts = _prompts(path)
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = getter()
        self.dimension = int(dim) if dim else 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, prompt_name: str = "query") -> np.ndarray:
        items = _check_texts(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self._model.encode(
            items,
            batch_size=batch_size,
            prompt=self._prompts.get(prompt_name, ""),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


class OnnxEmbedder(_Shared):
    """The int8 ONNX Runtime graph (pooling and normalisation inside) plus a Rust tokenizer."""

    def __init__(self, path: Path, *, threads: int = 0, max_length: int = 512, spin: bool = True) -> None:
        path = Path(path)
        graph = path / ONNX_DIR / INT8_NAME
        if not graph.exists():
            raise ModelMissing(f"no ONNX fast path at {graph}; {BUILD_HINT}")
        # Deferred: onnxruntime and tokenizers load only with a model (a Protocol import costs nothing).
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            # Idle ORT threads otherwise spin after each op, taking CPU that a service's request
            # threads need between model calls (batch jobs keep spinning: it is faster there).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.enable_truncation(max_length=max_length)
        self._tokenizer = tok
        self._pad_id = tok.token_to_id("<pad>") or 1
        self._prompts = _prompts(path)
        self.path = path
        self.model_id = _model_id(path) + "+onnx-int8"
        self.dimension = int(self._session.get_outputs()[0].shape[1] or 384)

    def _run(self, batch: list[str]) -> np.ndarray:
        encs = self._tokenizer.encode_batch(batch)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        out = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, prompt_name: str = "query") -> np.ndarray:
        prefix = self._prompts.get(prompt_name, "")
        items = [prefix + t for t in _check_texts(texts)]
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        # Sorting by length keeps padding, hence wasted compute, small inside each batch.
        order = np.argsort([len(t) for t in items], kind="stable")
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._run([items[i] for i in idx])
        return out


def default_encoder_path(model_dir: Path) -> Path:
    """The newest built encoder under ``model_dir/encoder`` (folders sort by version id)."""
    root = Path(model_dir) / "encoder"
    built = sorted(p for p in root.glob("*") if (p / "manifest.json").exists()) if root.exists() else []
    if not built:
        raise ModelMissing(f"no encoder under {root}; {BUILD_HINT}")
    return built[-1]


def load_embedder(
    path: Path | None, model_dir: Path, *, backend: str = "onnx", threads: int = 0, spin: bool = True
) -> Embedder:
    """Open the configured encoder; ONNX when the folder has the fast path, else torch."""
    folder = Path(path) if path else default_encoder_path(model_dir)
    if backend not in {"onnx", "torch"}:
        raise InvalidInput(f"encoder backend must be 'onnx' or 'torch', not {backend!r}")
    if backend == "onnx" and (folder / ONNX_DIR / INT8_NAME).exists():
        return OnnxEmbedder(folder, threads=threads, spin=spin)
    return SentenceEmbedder(folder, threads=threads)


@lru_cache(maxsize=4)
def cached_embedder(path: str | None, model_dir: str, backend: str = "onnx", threads: int = 0) -> Any:
    """One loaded encoder per process and setting (loading costs seconds and ~100 MB)."""
    return load_embedder(Path(path) if path else None, Path(model_dir), backend=backend, threads=threads)


class BatchingEmbedder(_Shared):
    """Coalesces concurrent ``encode`` calls from many threads into one batched model call.

    A service answers one submission per request; encoding them one at a time leaves the int8
    kernels mostly idle (one 30-token row per call). Requests arriving within ``max_wait_ms`` of
    each other share a batch, which is what lets one worker keep up with bursts of intake.
    """

    def __init__(self, inner: Embedder, *, max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.model_id = inner.model_id
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self._queue: queue.Queue[tuple[list[str], str, Any] | None] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()  # no call is queued behind the closing sentinel
        self._worker = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
        self._worker.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the batching thread once the queued calls are answered; later calls encode directly.

        The thread holds this object, hence the model session (~150 MB): an application that
        is shut down must close it, or every app ever started in a process keeps its model.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._worker.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            size = len(jobs[0][0])
            deadline = time.monotonic() + self.max_wait_ms / 1000
            while size < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if job is None:  # closing: answer what was collected, then stop
                    self._queue.put(None)
                    break
                jobs.append(job)
                size += len(job[0])
            for prompt in {j[1] for j in jobs}:
                group = [j for j in jobs if j[1] == prompt]
                texts = [t for j in group for t in j[0]]
                try:
                    vecs = self.inner.encode(texts, batch_size=max(len(texts), 1), prompt_name=prompt)
                except Exception as exc:  # hand the failure to every waiting caller
                    for j in group:
                        j[2].set_exception(exc)
                    continue
                start = 0
                for j in group:
                    j[2].set_result(vecs[start : start + len(j[0])])
                    start += len(j[0])

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, prompt_name: str = "query") -> np.ndarray:
        items = _check_texts(texts)
        future: Future[np.ndarray] = Future()
        with self._lock:
            direct = self._closed or len(items) > self.max_batch  # big jobs (re-indexing) go straight through
            if not direct:
                self._queue.put((items, prompt_name, future))
        if direct:
            return self.inner.encode(items, batch_size=batch_size, prompt_name=prompt_name)
        return future.result()


def similarities(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """``queries @ docs.T`` for L2-normalised rows (cosines), shape (n_queries, n_docs).

    A handful of queries (one request) goes through einsum, not BLAS: measured on the 2-core
    machine under load, a multi-threaded gemv of one query against 4,700 procedures took ~10 ms
    against ~0.6 ms on one thread, because its threads wait for cores the rest of the service holds.
    """
    q = np.asarray(queries, dtype=np.float32)
    d = np.asarray(docs, dtype=np.float32)
    if q.shape[0] <= 8:
        return np.einsum("qd,nd->qn", q, d)
    return q @ d.T
