"""Write the evaluation file of the national protocol: portal FAQ questions of one faq_id parity.

Keeps the questions whose procedure codes occur in the national file, as
`{"q": ..., "expect_codes": [...]}` lines for `motcua eval`.

    python benchmarks/portal_questions.py --parity odd --out var/eval/portal_odd.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from knowledge.io import iter_jsonl

REPO = Path(__file__).resolve().parents[1]
NATIONAL = REPO / "knowledge" / "data" / "national_procedures.jsonl.gz"  # the bundled file
PORTAL_FAQ = REPO / "tests" / "data" / "portal_faq_dev.jsonl.gz"


def main() -> None:
    """Select, filter and write the questions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faq", default=str(PORTAL_FAQ), help="portal FAQ JSONL (.gz or plain)")
    parser.add_argument("--national", default=str(NATIONAL), help="national procedures JSONL (.gz or plain)")
    parser.add_argument("--parity", choices=["even", "odd"], default="odd")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    codes = {row["ma_thu_tuc"].strip() for _, row in iter_jsonl(Path(args.national))}
    want = 1 if args.parity == "odd" else 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with out.open("w", encoding="utf-8") as dst:
        for _, row in iter_jsonl(Path(args.faq)):
            if not str(row["faq_id"]).isdigit() or int(row["faq_id"]) % 2 != want:
                continue
            expect = [c for c in row.get("procedures") or [] if c in codes]
            if expect:
                dst.write(
                    json.dumps({"q": row["question"], "expect_codes": expect}, ensure_ascii=False) + "\n"
                )
                kept += 1
    print(f"{out}: {kept} questions")


if __name__ == "__main__":
    main()
