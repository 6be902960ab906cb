"""Fit the decision thresholds on both kinds of knowledge base at once, and write them.

The curated KB with the development and calibration questions sets the thresholds of small knowledge
bases; the national KB with real portal questions (plus the off-topic examples) sets those of the
large regime, where the bot must be surer among 2,600 look-alike procedures.

    python benchmarks/calibrate_thresholds.py --curated-dir /tmp/cur --national-dir /tmp/nat \\
        --curated-questions var/eval/calib_all.jsonl --national-questions var/eval/portal_even.jsonl --write

Each data folder must already hold its knowledge base (the national one: `motcua kb import` of the
national file plus `motcua kb import-faq --id-parity odd`, so that the even questions are unseen).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import get_settings  # noqa: E402
from core.db import dispose_engines, session_scope  # noqa: E402
from retrieval import calibrate, evaluate  # noqa: E402
from retrieval.decision import LARGE_KB, save_thresholds, thresholds_key  # noqa: E402
from retrieval.service import AskService, open_retriever  # noqa: E402


def labelled(data_dir: str, questions: Path, regime: str) -> tuple[str, list[calibrate.Labelled]]:
    """Search the questions against the knowledge base of one data folder."""
    os.environ["MOTCUA_DATA_DIR"] = data_dir
    get_settings.cache_clear()
    with session_scope() as session:
        service = AskService(open_retriever(session))
    items = calibrate.label(service, evaluate.read_questions(questions), regime=regime)
    dispose_engines()
    return service.retriever.embedder.name, items


def main() -> None:
    """Label both sets, fit, print, and optionally write the thresholds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curated-dir", required=True)
    parser.add_argument("--national-dir", required=True)
    parser.add_argument("--curated-questions", type=Path, required=True)
    parser.add_argument("--national-questions", type=Path, required=True)
    parser.add_argument("--max-wrong", type=float, default=0.03)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    name, curated = labelled(args.curated_dir, args.curated_questions, "curated")
    _, national = labelled(args.national_dir, args.national_questions, "large")
    # The large regime keeps the curated off-topic examples: off-topic looks the same at any size.
    off_topic = [i for i in curated if i.question.expect is None and not i.question.expect_codes]
    for key, items in ((name, curated), (thresholds_key(name, LARGE_KB), national + off_topic)):
        thresholds, summary = calibrate.fit(items, max_wrong=args.max_wrong)
        print(f"{key}: {summary}")
        if args.write:
            save_thresholds(key, thresholds)
    if args.write:
        print("written to retrieval/data/thresholds.yaml")


if __name__ == "__main__":
    main()
