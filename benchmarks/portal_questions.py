"""Write the evaluation file of the national protocol: portal FAQ questions of one faq_id parity.

Keeps the questions whose procedure codes occur in the national file, as
`{"q": ..., "expect_codes": [...]}` lines for `motcua eval`.

    python benchmarks/portal_questions.py --parity odd --out var/eval/portal_odd.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    """Select, filter and write the questions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faq", default=str(SHARED / "portal_faq_dev.jsonl"))
    parser.add_argument("--national", default=str(SHARED / "national_procedures.jsonl"))
    parser.add_argument("--parity", choices=["even", "odd"], default="odd")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.national, encoding="utf-8") as handle:
        codes = {json.loads(line)["ma_thu_tuc"].strip() for line in handle if line.strip()}
    want = 1 if args.parity == "odd" else 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(args.faq, encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
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
