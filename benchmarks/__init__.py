"""Quality and speed benchmarks on ../shared/data; run with `triage bench`."""
