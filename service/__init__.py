"""The HTTP service: a thin FastAPI layer over the triage core library."""
