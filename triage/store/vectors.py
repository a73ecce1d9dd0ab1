"""Embeddings as stored in the database: float32 bytes, one vector per submission.

The similar-case search over them is ``triage.store.case_index.CaseIndex`` (faiss).
"""

from __future__ import annotations

import numpy as np


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)
