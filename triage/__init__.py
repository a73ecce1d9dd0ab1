"""pakn-triage core library: Vietnamese text, embeddings, routing, registry (no HTTP here)."""

__version__ = "0.1.0"
