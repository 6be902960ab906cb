"""Multi-turn conversations: the share of turns the bot gets right, follow-ups and switches included.

Runs the 40 scripts of benchmarks/data/multiturn.yaml through the real conversation engine (the app's
`load_engine`: the default knowledge base and model) on a fresh SQLite database, one conversation per script.
A turn is right when the bot answered with the expected procedure and part of its card, or offered the expected
procedure in a clarify list, or handed the conversation to the expected department.

    python benchmarks/multiturn.py                  # both splits
    python benchmarks/multiturn.py --verbose        # the wrong turns of the tune split
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

SCRIPTS = REPO / "benchmarks" / "data" / "multiturn.yaml"
TARGET = 0.90


def judge(outcome: Any, expect: dict[str, Any], ticket: Any, last_procedure: str | None) -> str | None:
    """None when the turn is right, else what was wrong."""
    status = expect.get("status", "answered")
    if status == "escalated":
        if outcome.status != "escalated" or ticket is None:
            return f"{outcome.status} instead of a hand-off"
        wanted = expect.get("department")
        if wanted is None:  # routed by the procedure being discussed
            return None if ticket.procedure_slug == last_procedure else f"ticket about {ticket.procedure_slug}"
        return None if ticket.department == wanted else f"ticket to {ticket.department}"
    if status == "clarify":
        offered = [b.payload.removeprefix("p:") for r in outcome.replies for b in r.buttons]
        return None if outcome.status == "clarify" and expect["offers"] in offered else f"{outcome.status}"
    answered = outcome.status == "answered"
    if not answered:
        return f"{outcome.status} instead of {expect['procedure']}"
    if outcome.procedure != expect["procedure"]:
        return f"answered {outcome.procedure}"
    if outcome.part != expect.get("part", "short"):
        return f"part {outcome.part} instead of {expect.get('part', 'short')}"
    return None


def run(scripts: list[dict[str, Any]], verbose: bool) -> dict[str, Counter[str]]:
    """Every script through the engine; right and all turns per split and per language."""
    from sqlalchemy import select

    from admin_api.app import load_engine
    from bot.engine import Inbound
    from bot.models import Conversation
    from core.db import session_scope
    from helpdesk.models import Ticket
    from retrieval.normalize import detect_lang

    engine = load_engine()
    tally: dict[str, Counter[str]] = {}
    for number, script in enumerate(scripts):
        user = f"script-{number}"
        last: str | None = None
        for turn in script["turns"]:
            with session_scope() as session:
                outcome = engine.handle(session, Inbound(channel="web", user=user, text=turn["say"]))
                conv = session.scalar(select(Conversation).where(Conversation.user_key == user))
                outcome.procedure = conv.state.get("last_procedure") if outcome.status == "answered" else None
                ticket = (
                    session.scalar(select(Ticket).where(Ticket.code == outcome.ticket)) if outcome.ticket else None
                )
                wrong = judge(outcome, turn["expect"], ticket, last)
            last = turn["expect"].get("procedure", last)
            for key in (script["split"], f"{script['split']} · {detect_lang(turn['say'])}"):
                counts = tally.setdefault(key, Counter())
                counts["turns"] += 1
                counts["right"] += wrong is None
            if wrong and verbose and script["split"] == "tune":  # held-out scripts are run, never studied
                print(f"  {script['id']}: {turn['say']!r}: {wrong}", file=sys.stderr)
    return tally


def main() -> int:
    """Run the scripts and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--verbose", action="store_true", help="print the wrong turns of the tune split to stderr (never held-out's)"
    )
    args = parser.parse_args()
    os.environ["MOTCUA_DATA_DIR"] = tempfile.mkdtemp(prefix="motcua-bench-multiturn-")
    os.environ.setdefault("MOTCUA_LOG_LEVEL", "WARNING")
    from core.yamlfiles import load_yaml

    scripts = load_yaml(SCRIPTS.read_text(encoding="utf-8"))
    tally = run(scripts, args.verbose)
    print(f"```bash\n{shlex.join(['python', 'benchmarks/multiturn.py', *sys.argv[1:]])}\n```\n")
    print("| scripts | turns | right | share |\n|---|---|---|---|")
    for key in sorted(tally):
        counts = tally[key]
        print(f"| {key} | {counts['turns']} | {counts['right']} | **{counts['right'] / counts['turns']:.1%}** |")
    held = tally.get("held_out", Counter())
    share = held["right"] / held["turns"] if held["turns"] else 0.0
    print(f"\nheld-out turns right ≥ {TARGET:.0%}: {'met' if share >= TARGET else 'NOT met'} ({share:.1%})")
    return 0 if share >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
