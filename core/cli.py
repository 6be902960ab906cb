"""The `motcua` command line: a thin layer that parses arguments and calls the services."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import session_scope
from core.errors import MotcuaError
from core.logging import configure_logging
from core.progress import progress


def _bar(total: int | None, desc: str) -> AbstractContextManager[Callable[..., None]]:
    """Progress of long work on stderr: a bar on a terminal, a line every few seconds otherwise."""
    return progress(desc, total)


@contextmanager
def _session() -> Iterator[Session]:
    """A transaction on the configured database, with the bundled curated and national procedures loaded."""
    from knowledge.service import ensure_national_seeded, ensure_seeded

    settings = get_settings()
    with session_scope() as session:
        report = ensure_seeded(session) if settings.seed_curated else None
        if report is not None:
            print(f"loaded the bundled knowledge base: {report}", file=sys.stderr)
        national = ensure_national_seeded(session) if settings.seed_national else None
        if national is not None:
            print(f"loaded the bundled national procedures: {national}", file=sys.stderr)
        yield session


def _ask_service() -> Any:
    """An AskService over the current knowledge base (index loaded or built once)."""
    from retrieval.service import AskService, open_retriever

    with _session() as session, _bar(None, "embedding knowledge base") as bar:
        retriever = open_retriever(session, progress=bar)
    return AskService(retriever)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question."""
    from knowledge.service import procedure_card

    service = _ask_service()
    result = service.ask(args.question, lang=args.lang)
    payload = result.to_json()
    if result.procedure:
        with session_scope() as session:
            payload["answer"] = procedure_card(session, result.procedure, result.lang)
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    print(f"{result.status} ({result.lang}, {result.latency_ms:.0f} ms)")
    if "answer" in payload:
        card = payload["answer"]
        print(f"\n{card['title']}  [{card['slug']}{', ' + card['code'] if card['code'] else ''}]")
        for label, key in (
            ("Summary", "summary"),
            ("Fees", "fees"),
            ("Time", "processing_time"),
            ("Where to file", "where_to_file"),
            ("Online", "online_link"),
        ):
            if card.get(key):
                print(f"{label}: {card[key]}")
        if card.get("documents"):
            print("Documents:\n" + "\n".join(f"  - {d}" for d in card["documents"]))
    print("\nCandidates:")
    for cand in payload["candidates"][:5]:
        print(f"  {cand['score']:.4f}  {cand['slug']:<45} {cand['title']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a question file and print the metrics table."""
    from retrieval import evaluate

    questions = evaluate.read_questions(Path(args.file))
    service = _ask_service()
    with _bar(len(questions), "asking") as bar:
        scored = evaluate.run(service, questions, ablation=not args.no_ablation, progress=bar)
    if args.results:
        evaluate.write_results(scored, Path(args.results))
    table = evaluate.grouped(scored)
    print(f"embedder {service.retriever.embedder.name}, {len(service.retriever.procedures)} procedures")
    print(evaluate.format_table(table))
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(table, indent=2), encoding="utf-8")
    return 0


def cmd_kb_import(args: argparse.Namespace) -> int:
    """Import procedures from a file; the national portal file is recognised by its fields."""
    from knowledge import service

    path = Path(args.file)
    if _is_national(path) and args.format is None:
        _import_national(path)
        return 0
    with _session() as session:
        report = service.import_file(session, path, args.format)
    print(f"{path}: {report}")
    return 0


def cmd_kb_import_national(args: argparse.Namespace) -> int:
    """Import the national procedures file: the bundled one, or FILE."""
    from knowledge.national import BUNDLED_NATIONAL_FILE

    path = Path(args.file) if args.file else BUNDLED_NATIONAL_FILE
    _import_national(path)
    return 0


def _import_national(path: Path) -> None:
    """Import a national procedures file with a progress bar, and say what it did."""
    from knowledge import service

    with _session() as session:
        total = sum(1 for _ in _open_text(path))
        with _bar(total, "importing national procedures") as bar:
            report = service.import_national(session, path, progress=bar)
    print(f"{path}: {report}")


def _open_text(path: Path) -> Iterator[str]:
    """The lines of a text file, gzip-compressed when it ends in .gz; nothing when it cannot be read."""
    import gzip

    try:
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError):
        return


def _is_national(path: Path) -> bool:
    """A JSON Lines file (or .jsonl.gz) whose first record has the portal's 'ma_thu_tuc' field."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if not ({".jsonl", ".ndjson"} & set(suffixes)):
        return False
    try:
        first = json.loads(next(iter(_open_text(path)), "") or "{}")
    except ValueError:
        return False
    return isinstance(first, dict) and "ma_thu_tuc" in first


def cmd_kb_import_faq(args: argparse.Namespace) -> int:
    """Import the portal's FAQ file."""
    from knowledge import service

    path = Path(args.file)
    with _session() as session, _bar(None, "importing FAQ") as bar:
        report = service.import_portal_faq(session, path, parity=args.id_parity, progress=bar)
    print(f"{path}: {report}")
    return 0


def cmd_kb_export(args: argparse.Namespace) -> int:
    """Export procedures to a file."""
    from knowledge import service

    with _session() as session:
        count = service.export_procedures(session, Path(args.file), args.format, origin=args.origin)
    print(f"{args.file}: {count} procedures written")
    return 0


def cmd_kb_stats(_args: argparse.Namespace) -> int:
    """Show what the knowledge base holds."""
    from knowledge import service

    with _session() as session:
        print(json.dumps({**service.counts(session), "version": service.kb_version(session)}))
    return 0


def cmd_departments_import(args: argparse.Namespace) -> int:
    """Create or update departments with their routing rules and SLA policies from a YAML or JSON file."""
    from helpdesk.departments import import_departments, read_departments
    from knowledge.models import utcnow

    path = Path(args.file)
    records = read_departments(path)
    with session_scope() as session:
        report = import_departments(session, records, source=str(path), now=utcnow(), dry_run=args.dry_run)
    print(f"{path}: {report}")
    return 0


def cmd_departments_list(_args: argparse.Namespace) -> int:
    """Show the departments, the default first, with what is routed to them."""
    from helpdesk.departments import list_departments

    with session_scope() as session:
        listed = list_departments(session)
    for d in listed:
        routes = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in d.routes.items() if values)
        print(f"{d.slug}{' (default)' if d.is_default else ''}  {d.name}  [{d.users} users]  {routes or '-'}")
    if not listed:
        print("no departments")
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    """Build (or rebuild with --force) the retrieval index of the current knowledge base."""
    from retrieval.service import open_retriever

    with _session() as session, _bar(None, "embedding knowledge base") as bar:
        retriever = open_retriever(session, progress=bar, force=args.force)
    print(f"index {retriever.version}: {len(retriever.procedures)} procedures, {len(retriever.views)} views")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the decision thresholds on labelled questions and (with --write) save them."""
    from retrieval import calibrate, evaluate
    from retrieval.decision import save_thresholds

    questions = evaluate.read_questions(Path(args.file))
    service = _ask_service()
    with _bar(len(questions), "searching") as bar:
        items = calibrate.label(service, questions, progress=bar)
    best, summary = calibrate.fit(items, max_wrong=args.max_wrong)
    print(summary)
    if args.write:
        save_thresholds(service.retriever.embedder.name, best)
        print("thresholds written")
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web app (web chat, API, health checks) with uvicorn."""
    import uvicorn

    from admin_api.app import create_app, load_engine
    from retrieval.builder import index_builder

    # Seed and build the first index once, here, before the builder process starts (it would build it too) and
    # before any worker (they only load it).
    engine = load_engine()
    if args.workers == 1:
        with index_builder():  # each later knowledge-base version is indexed in a process of its own
            uvicorn.run(create_app(engine), host=args.host, port=args.port, log_config=None)
        return 0
    from admin_api.workers import serve_workers

    with index_builder():
        return serve_workers(args.host, args.port, args.workers)


def cmd_chat(_args: argparse.Namespace) -> int:
    """A terminal chat with the bot, for trying it without any messenger."""
    import getpass

    from bot.engine import ConversationEngine, Inbound
    from retrieval.service import AskService, open_retriever

    with _session() as session, _bar(None, "embedding knowledge base") as bar:
        engine = ConversationEngine(AskService(open_retriever(session, progress=bar)))
    user = getpass.getuser()
    print("motcua chat — type a question, a /command, or a button number; Ctrl-D to quit.")
    buttons: list[Any] = []
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        pressed = buttons[int(line) - 1].payload if line.isdigit() and 0 < int(line) <= len(buttons) else None
        inbound = Inbound("cli", user, text=None if pressed else line, button=pressed)
        with session_scope() as session:
            outcome = engine.handle(session, inbound)
        buttons = []
        for reply in outcome.replies:
            print(reply.text)
            for button in reply.buttons:
                buttons.append(button)
                print(f"  [{len(buttons)}] {button.label}")


def _new_password(args: argparse.Namespace) -> str:
    """--password, else MOTCUA_NEW_PASSWORD, else asked twice on the terminal."""
    import getpass
    import os

    from core.errors import Invalid

    if args.password is not None:
        return str(args.password)
    if os.environ.get("MOTCUA_NEW_PASSWORD"):
        return os.environ["MOTCUA_NEW_PASSWORD"]
    if not sys.stdin.isatty():
        raise Invalid("no password: give --password, set MOTCUA_NEW_PASSWORD, or run in a terminal to be asked")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise Invalid("the two passwords differ")
    return password


def cmd_users_create(args: argparse.Namespace) -> int:
    """Create a user; an official's department may be a bundled one before the first `serve` has created them."""
    from helpdesk import accounts
    from helpdesk.departments import CREDENTIALS_FILE, ensure_departments_seeded

    password = _new_password(args)
    with session_scope() as session:
        if args.department and (seeded := ensure_departments_seeded(session, get_settings())):
            where = get_settings().data_dir / CREDENTIALS_FILE
            print(f"created the bundled departments and {len(seeded)} demo accounts ({where})", file=sys.stderr)
    with session_scope() as session:
        user = accounts.create_user(
            session,
            username=args.username,
            password=password,
            role=args.role,
            department=args.department,
            full_name=args.full_name,
        )
        print(f"created {user.role} {user.username}" + (f" of {user.department}" if user.department else ""))
    return 0


def cmd_users_list(_args: argparse.Namespace) -> int:
    """List users."""
    from helpdesk import accounts

    with session_scope() as session:
        print("username\trole\tdepartment\tactive\tfull name")
        for u in accounts.list_users(session):
            print(f"{u.username}\t{u.role}\t{u.department or '-'}\t{'yes' if u.active else 'no'}\t{u.full_name}")
    return 0


def cmd_users_deactivate(args: argparse.Namespace) -> int:
    """Deactivate a user and revoke their API tokens."""
    from helpdesk import accounts

    with session_scope() as session:
        accounts.deactivate_user(session, args.username)
    print(f"deactivated {args.username}; their API tokens are revoked")
    return 0


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    """Issue an API token and print it, once."""
    import datetime as dt

    from helpdesk import accounts
    from knowledge.models import utcnow

    now = utcnow()
    expires = now + dt.timedelta(days=args.days) if args.days else None
    with session_scope() as session:
        token, plaintext = accounts.issue_token(
            session, accounts.get_user(session, args.username), name=args.name, expires_at=expires, now=now
        )
    print(plaintext)
    until = f"expires {expires:%Y-%m-%d %H:%M} UTC" if expires else "never expires"
    print(
        f"API token {token.id} ({token.prefix}) of {args.username}, {until}: it will not be shown again",
        file=sys.stderr,
    )
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    """Revoke an API token by id or prefix."""
    from helpdesk import accounts
    from knowledge.models import utcnow

    with session_scope() as session:
        token = accounts.revoke_token(session, args.token, utcnow())
    print(f"API token {token.id} ({token.prefix}) revoked")
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    """List API tokens (never the tokens themselves)."""
    from helpdesk import accounts

    def when(value: Any) -> str:
        return f"{value:%Y-%m-%d %H:%M}" if value else "-"

    with session_scope() as session:
        print("id\tprefix\tuser\tname\tcreated\texpires\trevoked\tlast used")
        for t, owner in accounts.list_tokens(session, args.username):
            times = "\t".join(when(v) for v in (t.created_at, t.expires_at, t.revoked_at, t.last_used_at))
            print(f"{t.id}\t{t.prefix}\t{owner}\t{t.name or '-'}\t{times}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="motcua", description="Help desk in a chat for administrative procedures.")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question from the knowledge base")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object (DESIGN.md contract)")
    ask.add_argument("--lang", help="answer language (default: the question's)")
    ask.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", help="score a JSON Lines file of questions and print the metrics")
    ev.add_argument("file")
    ev.add_argument("--results", help="write one result line per question here")
    ev.add_argument("--metrics-json", help="also write the metrics table as JSON here")
    ev.add_argument("--no-ablation", action="store_true", help="skip the BM25-alone and dense-alone rankings")
    ev.set_defaults(func=cmd_eval)

    kb = sub.add_parser("kb", help="knowledge base: import, export, stats").add_subparsers(dest="kb", required=True)
    imp = kb.add_parser("import", help="import procedures (YAML, JSON, JSONL, CSV, or the national portal file)")
    imp.add_argument("file")
    imp.add_argument("--format", choices=["yaml", "json", "jsonl", "csv"], help="default: from the file suffix")
    imp.set_defaults(func=cmd_kb_import)
    nat = kb.add_parser(
        "import-national", help="import the national procedures file (default: the 2,642 bundled procedures)"
    )
    nat.add_argument("file", nargs="?", help="a national portal JSONL file (.jsonl or .jsonl.gz); default: bundled")
    nat.set_defaults(func=cmd_kb_import_national)
    faq = kb.add_parser("import-faq", help="import the portal's FAQ file (faq_id, question, answer, procedures)")
    faq.add_argument("file")
    faq.add_argument("--id-parity", choices=["even", "odd"], help="only entries whose faq_id has this parity")
    faq.set_defaults(func=cmd_kb_import_faq)
    exp = kb.add_parser("export", help="export procedures to YAML, JSON, JSONL or CSV")
    exp.add_argument("file")
    exp.add_argument("--format", choices=["yaml", "json", "jsonl", "csv"])
    exp.add_argument("--origin", choices=["curated", "national", "admin"], help="only procedures of this origin")
    exp.set_defaults(func=cmd_kb_export)
    stats = kb.add_parser("stats", help="counts and version of the knowledge base")
    stats.set_defaults(func=cmd_kb_stats)

    index = sub.add_parser("index", help="retrieval index").add_subparsers(dest="index", required=True)
    build = index.add_parser("build", help="build the index of the current knowledge base")
    build.add_argument("--force", action="store_true", help="rebuild even if a persisted one matches")
    build.set_defaults(func=cmd_index_build)

    deps = sub.add_parser("departments", help="departments and routing").add_subparsers(dest="deps", required=True)
    dimp = deps.add_parser("import", help="import departments, routing rules and SLA targets (YAML or JSON)")
    dimp.add_argument("file")
    dimp.add_argument("--dry-run", action="store_true", help="check the file and report, write nothing")
    dimp.set_defaults(func=cmd_departments_import)
    deps.add_parser("list", help="list departments and their routing").set_defaults(func=cmd_departments_list)

    cal = sub.add_parser("calibrate", help="fit the answer/clarify/decline thresholds on labelled questions")
    cal.add_argument("file")
    cal.add_argument("--max-wrong", type=float, default=0.02, help="highest answered-wrong rate allowed")
    cal.add_argument("--write", action="store_true", help="save the thresholds for the current embedder")
    cal.set_defaults(func=cmd_calibrate)
    serve = sub.add_parser("serve", help="run the web app: web chat, API, webhooks, health checks")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="HTTP worker processes (default 1); one of them also runs the bots' polling, outboxes and deadlines",
    )
    serve.set_defaults(func=cmd_serve)

    chat = sub.add_parser("chat", help="chat with the bot in this terminal")
    chat.set_defaults(func=cmd_chat)

    users = sub.add_parser("users", help="accounts of officials, supervisors and admins").add_subparsers(
        dest="users", required=True
    )
    ucreate = users.add_parser("create", help="create a user")
    ucreate.add_argument("--username", required=True, help="3-80 of a-z 0-9 . _ -")
    ucreate.add_argument("--password", help="at least 8 characters; default: MOTCUA_NEW_PASSWORD, else asked")
    ucreate.add_argument("--role", required=True, choices=["official", "supervisor", "admin"])
    ucreate.add_argument("--department", help="department slug (officials and supervisors)")
    ucreate.add_argument("--full-name", default="")
    ucreate.set_defaults(func=cmd_users_create)
    users.add_parser("list", help="list users").set_defaults(func=cmd_users_list)
    udeactivate = users.add_parser("deactivate", help="refuse a user's logins and revoke their API tokens")
    udeactivate.add_argument("username")
    udeactivate.set_defaults(func=cmd_users_deactivate)

    tokens = sub.add_parser("tokens", help="personal API tokens").add_subparsers(dest="tokens", required=True)
    tissue = tokens.add_parser("issue", help="issue an API token (printed once)")
    tissue.add_argument("--username", required=True)
    tissue.add_argument("--name", default="", help="what the token is for")
    tissue.add_argument("--days", type=int, default=90, help="valid for D days (default 90; 0: never expires)")
    tissue.set_defaults(func=cmd_tokens_issue)
    trevoke = tokens.add_parser("revoke", help="revoke an API token")
    trevoke.add_argument("token", metavar="ID_OR_PREFIX")
    trevoke.set_defaults(func=cmd_tokens_revoke)
    tlist = tokens.add_parser("list", help="list API tokens (never the tokens themselves)")
    tlist.add_argument("--username")
    tlist.set_defaults(func=cmd_tokens_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `motcua` console script."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        return int(args.func(args) or 0)
    except MotcuaError as exc:
        print(f"motcua: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
