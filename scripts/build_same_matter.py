"""Build ``triage/data/same_matter.npz``: the same-matter pair scorer fitted on the public training splits.

Reads ``../shared/data`` (dvc_faq train, the calibration half of vnPara; never dvc_faq dev or the
held-out half of vnPara, which the benchmark scores), encodes with the configured encoder and writes
arrays only (adapter, character IDF, trees, calibration, card). Deterministic for its seed.
Run from the repository root:

    .venv/bin/python scripts/build_same_matter.py [--out triage/data/same_matter.npz] [--zalo]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.same_matter import fit_same_matter
from triage.config import get_settings
from triage.nlp.embed import load_embedder
from triage.nlp.same_matter import PACKAGED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "triage" / "data" / PACKAGED)
    parser.add_argument("--zalo", action="store_true", help="Also fit on zalo_legal same-document pairs.")
    parser.add_argument(
        "--precision", type=float, default=0.99, help="Precision the duplicate threshold is chosen for."
    )
    parser.add_argument("--campaign-precision", type=float, default=0.999, help="Precision of the campaign threshold.")
    args = parser.parse_args(argv)
    s = get_settings()
    embedder = load_embedder(s.encoder_path, s.model_dir, backend=s.encoder_backend, threads=s.encoder_threads)
    scorer, info = fit_same_matter(
        s.shared_data_dir,
        embedder,
        zalo=args.zalo,
        cache=root / "var" / "same-matter-cache",
        say=lambda m: print(m, file=sys.stderr, flush=True),
        precision=args.precision,
        campaign_precision=args.campaign_precision,
    )
    scorer.save(args.out, info=info)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 1024:.0f} KiB): duplicate threshold {scorer.threshold_:.4f} "
        f"(precision {args.precision}), campaign threshold {scorer.campaign_threshold_:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
