"""Load and crash checks against a real `triage serve` process on this machine (loopback only)."""
