"""`python -m triage.cli`: the same app as the `triage` script (the tests start the service this way)."""

from triage.cli import app

if __name__ == "__main__":
    app()
