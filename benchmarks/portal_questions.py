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


def select(parity: str, faq: Path = PORTAL_FAQ, national: Path = NATIONAL) -> list[dict[str, object]]:
    """The portal questions of one faq_id parity with their procedure codes that occur in the national file."""
    codes = {row["ma_thu_tuc"].strip() for _, row in iter_jsonl(national)}
    want = 1 if parity == "odd" else 0
    selected = []
    for _, row in iter_jsonl(faq):
        if not str(row["faq_id"]).isdigit() or int(row["faq_id"]) % 2 != want:
            continue
        expect = [c for c in row.get("procedures") or [] if c in codes]
        if expect:
            selected.append({"q": row["question"], "expect_codes": expect})
    return selected


def main() -> None:
    """Select, filter and write the questions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faq", default=str(PORTAL_FAQ), help="portal FAQ JSONL (.gz or plain)")
    parser.add_argument("--national", default=str(NATIONAL), help="national procedures JSONL (.gz or plain)")
    parser.add_argument("--parity", choices=["even", "odd"], default="odd")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    selected = select(args.parity, Path(args.faq), Path(args.national))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as dst:
        for line in selected:
            dst.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"{out}: {len(selected)} questions")


if __name__ == "__main__":
    main()
