"""The channel-agnostic conversation engine: (channel, user, message) -> stored, answered, queued replies."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cards import ALIASES, ASPECTS, PARTS, TELEGRAM_CALLBACK_LIMIT, has_part, render_card
from bot.followup import read_follow_up
from bot.models import ChatMessage, Conversation, Feedback, InboundUpdate
from bot.texts import EXAMPLE_QUESTIONS, GREETING_TOPICS, say, topic_label, ui_lang
from core.config import get_settings
from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from core.text import fold
from helpdesk.models import Ticket
from helpdesk.notifications import link_telegram
from helpdesk.outbox import enqueue
from helpdesk.service import get_ticket, open_ticket, open_ticket_of, rate_ticket, reopen_ticket, tickets_of
from helpdesk.sla import VN
from helpdesk.tickets import citizen_wrote
from knowledge.models import Procedure, utcnow
from knowledge.service import procedure_card
from retrieval.decision import ANSWERED, CLARIFY, DECLINED, ESCALATED, asks_for_person
from retrieval.normalize import clean, detect_lang, tokens
from retrieval.service import AskResult, AskService

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000  # longer messages are pasted documents, not questions: ask to shorten
EXCERPT_MESSAGES = 6
REASK_WORDS = 12  # a chat-length question is searched again without its part's words; a long one says enough
MAX_SUCCESSORS = 3  # a retired procedure's successor may itself be retired: follow a short chain, never a loop


@dataclass(frozen=True)
class Button:
    """A button under a reply; payload comes back when pressed."""

    label: str
    payload: str


@dataclass
class Reply:
    """One message to the citizen."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    message_id: int | None = None
    blocks: list[dict[str, Any]] | None = None  # the structure of text (bot/cards.py), where it has one


@dataclass
class Inbound:
    """A citizen's message as a channel adapter hands it over."""

    channel: str
    user: str
    text: str | None = None
    button: str | None = None
    external_id: str | None = None  # Telegram update_id, Zalo msg_id: retries carry the same one
    kind: str = "text"  # text | photo | sticker | voice | location | file | other
    lang_hint: str | None = None
    reply_to: str | None = None


@dataclass
class Outcome:
    """What the engine did with an inbound message."""

    status: str
    replies: list[Reply] = field(default_factory=list)
    ticket: str | None = None
    duplicate: bool = False
    part: str | None = None  # the part of a card an answer shows (bot.cards), when it is one


class ConversationEngine:
    """Turns inbound messages into replies; everything it does happens in the caller's transaction."""

    def __init__(self, asker: AskService, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.asker = asker
        self.clock = clock

    def handle(self, session: Session, inbound: Inbound) -> Outcome:
        """Store, deduplicate, answer and queue the replies of one inbound message."""
        update = self.accept(session, inbound)
        if update is None:
            return Outcome("duplicate", duplicate=True)
        return self.process(session, update)

    def accept(self, session: Session, inbound: Inbound) -> InboundUpdate | None:
        """Store an inbound message before anything else happens to it; None for a retry already stored.

        Webhooks call this before answering 200 and `process` afterwards: a crash in between leaves the
        update in the inbox, and `process_pending` finishes it on the next start.
        """
        if inbound.external_id is not None:
            seen = session.scalar(
                select(InboundUpdate.id).where(
                    InboundUpdate.channel == inbound.channel, InboundUpdate.external_id == inbound.external_id
                )
            )
            if seen is not None:
                return None
        update = InboundUpdate(
            channel=inbound.channel,
            external_id=inbound.external_id,
            user_key=inbound.user,
            payload=asdict(inbound),
            received_at=self.clock(),
        )
        session.add(update)
        session.flush()
        return update

    def process(self, session: Session, update: InboundUpdate) -> Outcome:
        """Answer a stored update and queue its replies (once: a processed update is skipped)."""
        if update.processed_at is not None:
            return Outcome("duplicate", duplicate=True)
        inbound = Inbound(**update.payload)
        started = update.received_at
        conversation = self._conversation(session, inbound)
        session.add(
            ChatMessage(
                conversation_id=conversation.id,
                direction="in",
                author="citizen",
                text=inbound.text or (f"[{inbound.button}]" if inbound.button else f"[{inbound.kind}]"),
                at=started,
                inbound_id=update.id,
            )
        )
        before = conversation.state.get("last_procedure")
        outcome = self._route(session, conversation, inbound)
        if outcome.status == ANSWERED or conversation.state.get("last_procedure") != before:
            # the procedure the conversation is about now, and since when: follow-ups are read against it
            conversation.state = {**conversation.state, "context_at": self.clock().isoformat()}
        for reply in outcome.replies:
            self._emit(session, conversation, inbound, update, reply, outcome, started)
        update.processed_at = self.clock()
        session.flush()
        return outcome

    # -- routing ---------------------------------------------------------------------------------

    def _route(self, session: Session, conv: Conversation, inbound: Inbound) -> Outcome:
        if inbound.button:
            state = dict(conv.state)
            part = state.pop("pending_part", None)  # the part of the card asked for before a clarify list
            conv.state = state
            slug = inbound.button.removeprefix("p:")
            if part and inbound.button.startswith("p:") and slug:
                return self._answer(session, conv, slug, self._lang(conv, None), part)
            return self._button(session, conv, inbound.button)
        if inbound.kind != "text":
            return Outcome("unsupported", [Reply(say("unsupported", self._lang(conv, None)))])
        text = clean(inbound.text or "")
        if text.startswith("/"):
            return self._command(session, conv, text)
        if not tokens(text):
            return Outcome("empty", [Reply(say("empty", self._lang(conv, None)))])
        if len(text) > MAX_QUESTION_CHARS:
            lang = self._lang(conv, text)
            return Outcome("too_long", [Reply(say("too_long", lang, n=len(text), max=MAX_QUESTION_CHARS))])
        ticket = open_ticket_of(session, conv.id)
        if ticket is not None and ticket.status == "acknowledged":
            # An official owns this conversation now: the bot passes messages on, it does not answer.
            citizen_wrote(session, ticket, text, self.clock())
            return Outcome(
                "forwarded",
                [Reply(say("ticket_open", self._lang(conv, text), code=ticket.code))],
                ticket.code,
            )
        return self._question(session, conv, text)

    def _question(self, session: Session, conv: Conversation, text: str) -> Outcome:
        if asks_for_person(text):
            return self._hand_off(session, conv, text)
        follow = read_follow_up(text)
        current = self._current_procedure(conv)
        beyond = self._beyond(current, follow.rest) if current else ()
        # "what does it cost to replace it?": a pointer back carries one word of its own with it
        if current and (follow.aspect or follow.refers_back) and len(beyond) <= (1 if follow.refers_back else 0):
            # "lệ phí bao nhiêu?", "thế còn nộp ở đâu": about the procedure just discussed, nothing to search
            lang = self._lang(conv, text)
            return self._answer(session, conv, current, lang, follow.aspect or "short")
        result = self.asker.ask(text, lang=None)
        if result.status != ANSWERED and follow.aspect and follow.rest and len(text.split()) <= REASK_WORDS:
            # "đăng ký kết hôn ở đâu": the words of the part asked for are no part of the procedure's name
            topic = self.asker.ask(follow.topic, lang=result.lang)
            result = topic if topic.status == ANSWERED else result
        lang = conv.lang or result.lang
        conv.state = {**conv.state, "last_lang": lang}
        part = follow.aspect or "short"
        if result.status == ANSWERED and follow.aspect and follow.names_nothing_else and not current:
            # "lệ phí bao nhiêu?" with nothing discussed before names no procedure: ask which, never guess
            result = replace(result, status=CLARIFY, offer=min(3, len(result.candidates)))
        if result.status == ANSWERED and result.procedure:
            return self._answer(session, conv, result.procedure, lang, part)
        if current and (follow.aspect or follow.refers_back) and self._still_about(current, text, result):
            # "còn lệ phí cấp lại thì sao?": its own words name nothing surely, and with the procedure's title
            # they are about that procedure
            return self._answer(session, conv, current, lang, part)
        if result.status == CLARIFY:
            return self._clarify(conv, result, lang, follow.aspect)
        if result.status == ESCALATED:
            return self._escalate(session, conv, text, "low_confidence", lang, result.candidates[:5])
        return Outcome(DECLINED, [Reply(say("declined", lang), [self._person_button(lang)])])

    def _clarify(self, conv: Conversation, result: AskResult, lang: str, aspect: str | None) -> Outcome:
        """The best candidates as buttons; the part asked for is kept for the button the citizen presses."""
        offered = result.candidates[: result.offer]
        conv.state = {**conv.state, "offered": [c["slug"] for c in offered]}
        if aspect:
            conv.state = {**conv.state, "pending_part": aspect}
        buttons = [Button(_short(c["title"]), f"p:{c['slug']}") for c in offered]
        # "kết hôn với người nước ngoài" when only the domestic procedure is known: say so, do not pass one off as
        # the other
        prompt = say("clarify_missing", lang, case=say(f"case_{result.missing}", lang)) if result.missing else None
        return Outcome(CLARIFY, [Reply(prompt or say("clarify", lang), [*buttons, self._person_button(lang)])])

    def _answer(self, session: Session, conv: Conversation, slug: str, lang: str, part: str) -> Outcome:
        """A procedure's card, or the part of it asked for."""
        outcome = self._card(session, conv, slug, lang, status=ANSWERED, part=part)
        if outcome.status == ANSWERED:
            outcome.part = part
        return outcome

    def _hand_off(self, session: Session, conv: Conversation, text: str) -> Outcome:
        """A typed request for a person: the ticket carries the last real question and its procedure.

        Routing by the request's own words ("tôi muốn gặp cán bộ") sent tickets about birth, building or driving
        licences to the police; by the question and the procedure they reach its department, and a request
        with neither goes to the default one-stop desk.
        """
        lang = self._lang(conv, text)
        question = self._last_question(session, conv, skip_latest=True)
        procedure = conv.state.get("last_procedure")
        candidates = None
        if question and not procedure:
            found = self.asker.ask(question, lang=None)
            candidates = found.candidates[:5] if found.status in (ANSWERED, CLARIFY) else None
        return self._escalate(
            session, conv, question or text, "asked_for_person", lang, candidates, procedure=procedure
        )

    def _current_procedure(self, conv: Conversation) -> str | None:
        """The procedure the conversation is about, unless the citizen has been away longer than the context lasts."""
        slug, since = conv.state.get("last_procedure"), conv.state.get("context_at")
        if not slug or not since:
            return None
        idle = self.clock() - dt.datetime.fromisoformat(since)
        return slug if idle <= dt.timedelta(minutes=get_settings().context_minutes) else None

    def _beyond(self, slug: str, words: tuple[str, ...]) -> tuple[str, ...]:
        """The words that are not in the procedure's titles: "hưởng" in "ai được hưởng?" names nothing new after
        the unemployment benefit card, "sổ đỏ" after the passport card does."""
        retriever = self.asker.retriever
        titles = " ".join(t for lang in ("vi", "en") if (t := retriever.title_of(slug, lang)))
        own = set(re.sub(r"[^\w]+", " ", fold(titles)).split())
        return tuple(w for w in words if w not in own)

    def _still_about(self, slug: str, text: str, result: AskResult) -> bool:
        """Whether an unsure follow-up is about the current procedure: the search puts it first, or the search
        offers nothing to choose from and the question read with the procedure's title is answered by it."""
        if result.candidates and result.candidates[0]["slug"] == slug:
            return True
        return result.status != CLARIFY and self._about(slug, text)

    def _about(self, slug: str, text: str) -> bool:
        """Whether a question read together with a procedure's title is answered by that procedure."""
        title = self.asker.retriever.title_of(slug, detect_lang(text))
        if not title:
            return False
        found = self.asker.ask(f"{title} {text}", lang=None)
        return found.status == ANSWERED and found.procedure == slug

    def _card(
        self,
        session: Session,
        conv: Conversation,
        slug: str,
        lang: str,
        *,
        status: str,
        hops: int = 0,
        part: str = "short",
    ) -> Outcome:
        """A procedure's card: short (the default), full, or one aspect of it ("fees", "where_to_file"...)."""
        try:
            card = procedure_card(session, slug, lang)
        except NotFound:
            return Outcome("expired", [Reply(say("expired", lang))])
        if card["status"] == "retired":  # an old button, or a question answered just before it was retired
            if not card["successor"] or hops >= MAX_SUCCESSORS:
                notice = Reply(say("retired", lang, title=card["title"]), [self._person_button(lang)])
                return Outcome("retired", [notice])
            replaced = self._card(session, conv, card["successor"], lang, status=status, hops=hops + 1, part=part)
            notice = Reply(say("retired_successor", lang, title=card["title"]))
            return Outcome(replaced.status, [notice, *replaced.replies], replaced.ticket)
        if part not in PARTS and part not in ALIASES:
            logger.warning("no card part %r; showing the short card", part)
            part = "short"
        rendered = render_card(card, lang, part)
        buttons = [
            *self._part_buttons(card, lang, ALIASES.get(part, part)),
            Button(say("button_up", lang), "f:+"),
            Button(say("button_down", lang), "f:-"),
            self._person_button(lang),
        ]
        conv.state = {**conv.state, "last_procedure": slug}
        return Outcome(status, [Reply(rendered.text, buttons, blocks=rendered.blocks)])

    def _part_buttons(self, card: dict[str, Any], lang: str, part: str) -> list[Button]:
        """Where a card can go from here: the full card, and from a short card its steps and legal basis."""
        wanted = [] if part == "full" else ["full"]
        if part == "short":
            wanted += [p for p in ("steps", "legal_basis") if has_part(card, p)]
        elif part in ASPECTS and not has_part(card, part):
            wanted.append("short")  # nothing to say about this aspect: offer the essentials instead
        buttons = [Button(say(f"button_{p}", lang), f"c:{card['slug']}:{p}") for p in wanted]
        # Telegram refuses a whole message over one button with too long a callback_data.
        return [b for b in buttons if len(b.payload.encode()) <= TELEGRAM_CALLBACK_LIMIT]

    def _escalate(
        self,
        session: Session,
        conv: Conversation,
        question: str,
        reason: str,
        lang: str,
        candidates: list[dict[str, Any]] | None = None,
        *,
        procedure: str | None = None,
    ) -> Outcome:
        recent = session.scalars(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conv.id)
            .order_by(ChatMessage.id.desc())
            .limit(EXCERPT_MESSAGES)
        ).all()
        excerpt = [{"direction": m.direction, "text": m.text[:500], "at": m.at.isoformat()} for m in reversed(recent)]
        ticket = open_ticket(
            session,
            conversation_id=conv.id,
            channel=conv.channel,
            question=question,
            reason=reason,
            lang=lang,
            now=self.clock(),
            candidates=candidates,
            excerpt=excerpt,
            procedure_slug=procedure or (None if candidates else conv.state.get("last_procedure")),
        )
        deadline = ticket.deadline.astimezone(VN).strftime("%H:%M %d/%m/%Y")
        return Outcome(ESCALATED, [Reply(say("escalated", lang, code=ticket.code, deadline=deadline))], ticket.code)

    def _button(self, session: Session, conv: Conversation, payload: str) -> Outcome:
        lang = self._lang(conv, None)
        kind, _, value = payload.partition(":")
        if kind == "p" and value:
            return self._card(session, conv, value, lang, status=ANSWERED)
        if kind == "c" and value.count(":") == 1:
            slug, part = value.split(":")
            if slug and part in PARTS:
                return self._card(session, conv, slug, lang, status=ANSWERED, part=part)
        if kind == "q" and value.isdigit() and int(value) < len(EXAMPLE_QUESTIONS[ui_lang(lang)]):
            # An example question of the greeting, answered exactly as if the citizen had typed it.
            question = EXAMPLE_QUESTIONS[ui_lang(lang)][int(value)]
            return self._route(session, conv, Inbound(channel=conv.channel, user=conv.user_key, text=question))
        if kind == "h":
            question = self._last_question(session, conv) or say("button_person", lang)
            return self._escalate(session, conv, question, "asked_for_person", lang)
        if kind == "f" and value in ("+", "-"):
            return self._feedback(session, conv, lang, +1 if value == "+" else -1)
        if kind == "t":
            return self._topic(session, lang, value)
        if kind == "r" and value.count(":") == 1 and value.rsplit(":", 1)[1].isdigit():
            code, rating = value.rsplit(":", 1)
            try:
                rate_ticket(session, code, conv.id, int(rating))
            except (NotFound, PermissionDenied, Invalid):
                return Outcome("expired", [Reply(say("expired", lang))])
            return Outcome("rated", [Reply(say("rated", lang))], code)
        if kind == "o" and value:
            try:
                ticket = reopen_ticket(session, value, conv.id, now=self.clock())
            except Conflict:  # still open: nothing to reopen
                ticket = get_ticket(session, value)
            except (NotFound, PermissionDenied):
                return Outcome("expired", [Reply(say("expired", lang))])
            deadline = ticket.deadline.astimezone(VN).strftime("%H:%M %d/%m/%Y")
            return Outcome("reopened", [Reply(say("reopened", lang, code=value, deadline=deadline))], value)
        if kind == "l" and value in ("vi", "en"):
            conv.lang = value
            return Outcome("lang", [Reply(say("lang_set", value))])
        return Outcome("expired", [Reply(say("expired", lang))])

    def _command(self, session: Session, conv: Conversation, text: str) -> Outcome:
        command, _, arg = text.partition(" ")
        command = command.split("@", 1)[0].lower()  # Telegram groups send /help@botname
        lang = self._lang(conv, None)
        if command == "/start":
            return self._greeting(session, lang)
        if command == "/help":
            return Outcome("help", [Reply(say("help", lang))])
        if command == "/lang":
            if arg.strip() in ("vi", "en"):
                conv.lang = arg.strip()
                return Outcome("lang", [Reply(say("lang_set", conv.lang))])
            return Outcome(
                "lang", [Reply(say("help", lang), [Button("Tiếng Việt", "l:vi"), Button("English", "l:en")])]
            )
        if command == "/topics":
            return self._topic(session, lang, "")
        if command == "/ticket":
            tickets = tickets_of(session, conv.id)
            if not tickets:
                return Outcome("tickets", [Reply(say("no_tickets", lang))])
            lines = [say("tickets", lang)] + [_ticket_line(t) for t in tickets]
            return Outcome("tickets", [Reply("\n".join(lines))])
        if command == "/link":
            return self._link(session, conv, arg.strip(), lang)
        return Outcome("help", [Reply(say("help", lang))])

    def _greeting(self, session: Session, lang: str) -> Outcome:
        """The welcome: what to ask, example questions and the most asked-about topics as buttons."""
        examples = [Button(q, f"q:{i}") for i, q in enumerate(EXAMPLE_QUESTIONS[ui_lang(lang)])]
        known = set(session.scalars(select(Procedure.category).where(Procedure.origin != "national").distinct()))
        topics = [Button(topic_label(c, lang), f"t:{c}") for c in GREETING_TOPICS if c in known]
        buttons = [*examples, *topics, Button(say("button_topics", lang), "t:"), self._person_button(lang)]
        return Outcome("start", [Reply(say("greeting", lang), buttons)])

    def _link(self, session: Session, conv: Conversation, code: str, lang: str) -> Outcome:
        """An official links this Telegram chat to their account for notifications (`/link CODE`)."""
        if conv.channel != "telegram":
            return Outcome("link", [Reply(say("link_telegram_only", lang))])
        if not code:
            return Outcome("link", [Reply(say("link_usage", lang))])
        try:
            user = link_telegram(session, code, conv.user_key, self.clock())
        except Invalid:
            return Outcome("link_refused", [Reply(say("link_wrong", lang))])
        return Outcome("linked", [Reply(say("link_done", lang, username=user.username))])

    def _topic(self, session: Session, lang: str, category: str) -> Outcome:
        curated = select(Procedure).where(Procedure.origin != "national")
        if not category:
            categories = sorted(set(session.scalars(select(Procedure.category).where(Procedure.origin != "national"))))
            buttons = [Button(topic_label(c, lang), f"t:{c}") for c in categories if c]
            return Outcome("topics", [Reply(say("topics", lang), buttons)])
        procs = session.scalars(curated.where(Procedure.category == category).order_by(Procedure.slug)).all()
        buttons = [
            Button(_short(p.text(ui_lang(lang)).title if p.text(ui_lang(lang)) else p.slug), f"p:{p.slug}")
            for p in procs[:10]
        ]
        return Outcome("topics", [Reply(say("topic", lang), buttons)])

    def _feedback(self, session: Session, conv: Conversation, lang: str, value: int) -> Outcome:
        answer = session.scalar(
            select(ChatMessage)
            .where(
                ChatMessage.conversation_id == conv.id,
                ChatMessage.direction == "out",
                ChatMessage.procedure.is_not(None),
            )
            .order_by(ChatMessage.id.desc())
        )
        if answer is None:
            return Outcome("expired", [Reply(say("expired", lang))])
        existing = session.scalar(select(Feedback).where(Feedback.message_id == answer.id))
        if existing is None:
            session.add(Feedback(message_id=answer.id, conversation_id=conv.id, value=value, at=self.clock()))
        else:
            existing.value = value
        if value > 0:
            return Outcome("feedback", [Reply(say("thanks_up", lang))])
        return Outcome("feedback", [Reply(say("thanks_down", lang), [self._person_button(lang)])])

    # -- helpers ---------------------------------------------------------------------------------

    def _conversation(self, session: Session, inbound: Inbound) -> Conversation:
        conv = session.scalar(
            select(Conversation).where(Conversation.channel == inbound.channel, Conversation.user_key == inbound.user)
        )
        if conv is None:
            conv = Conversation(channel=inbound.channel, user_key=inbound.user, state={})
            if inbound.lang_hint in ("vi", "en"):
                conv.state = {"last_lang": inbound.lang_hint}
            session.add(conv)
            session.flush()
        return conv

    def _lang(self, conv: Conversation, text: str | None) -> str:
        if conv.lang:
            return conv.lang
        if text:
            return detect_lang(text)
        return str(conv.state.get("last_lang") or "vi")

    def _last_question(self, session: Session, conv: Conversation, *, skip_latest: bool = False) -> str | None:
        """The citizen's last real question: not a button, command or request for a person (nor, with skip_latest,
        the message being answered)."""
        texts = session.scalars(
            select(ChatMessage.text)
            .where(
                ChatMessage.conversation_id == conv.id,
                ChatMessage.direction == "in",
                ~ChatMessage.text.startswith("["),
                ~ChatMessage.text.startswith("/"),
            )
            .order_by(ChatMessage.id.desc())
            .limit(EXCERPT_MESSAGES + 1)
        ).all()
        for text in texts[1:] if skip_latest else texts:
            if not asks_for_person(text):
                return text
        return None

    def _person_button(self, lang: str) -> Button:
        return Button(say("button_person", lang), "h")

    def _emit(
        self,
        session: Session,
        conv: Conversation,
        inbound: Inbound,
        update: InboundUpdate,
        reply: Reply,
        outcome: Outcome,
        started: dt.datetime,
    ) -> None:
        """Log the reply with its latency and, on push channels, queue it in the outbox."""
        buttons = [{"label": b.label, "payload": b.payload} for b in reply.buttons]
        message = ChatMessage(
            conversation_id=conv.id,
            direction="out",
            author="bot",
            text=reply.text,
            buttons=buttons,
            at=self.clock(),
            inbound_id=update.id,
            status=outcome.status,
            procedure=conv.state.get("last_procedure") if outcome.status == ANSWERED else None,
            latency_ms=(self.clock() - started).total_seconds() * 1000,
            ticket_code=outcome.ticket,
            blocks=reply.blocks,
        )
        session.add(message)
        session.flush()
        reply.message_id = message.id
        enqueue(
            session, conv.channel, conv.user_key, reply.text, buttons, message.id, inbound.reply_to, blocks=reply.blocks
        )


def pending_updates(session: Session, channels: list[str]) -> list[InboundUpdate]:
    """Stored updates not processed yet (a crash came between storing and answering), oldest first."""
    stmt = (
        select(InboundUpdate)
        .where(InboundUpdate.processed_at.is_(None), InboundUpdate.channel.in_(channels))
        .order_by(InboundUpdate.id)
    )
    return list(session.scalars(stmt))


def _short(title: str, limit: int = 60) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def _ticket_line(ticket: Ticket) -> str:
    deadline = ticket.deadline.astimezone(VN).strftime("%H:%M %d/%m")
    return f"• {ticket.code} — {ticket.status} — {deadline}"
