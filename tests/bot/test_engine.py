"""The conversation engine on a real database and the bundled knowledge base (hash embedder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.cards import plain_text, utf16_len
from bot.engine import ConversationEngine, Inbound
from bot.models import ChatMessage, Conversation, Feedback, InboundUpdate
from bot.texts import EXAMPLE_QUESTIONS
from core.config import Settings
from core.db import session_scope
from helpdesk.models import OutboxMessage, Ticket
from knowledge.models import Procedure
from knowledge.service import ensure_seeded
from retrieval.decision import Thresholds
from retrieval.retriever import Retriever
from retrieval.service import AskService

ALWAYS_ANSWER = Thresholds(
    answer_dense=-1, answer_margin=-100, domain_dense=-1, domain_known=0, off_topic_gap=10, clarify_gap=10
)
NEVER_ANSWER = Thresholds(
    answer_dense=2, answer_margin=100, domain_dense=-1, domain_known=0, off_topic_gap=10, clarify_gap=10
)
ALWAYS_DECLINE = Thresholds(off_topic_gap=-10)


@pytest.fixture
def retriever(settings: Settings, bundled_retriever: Retriever) -> Retriever:
    """The bundled knowledge base seeded into this test's database, and the session's retriever of it."""
    with session_scope() as session:
        ensure_seeded(session)
    return bundled_retriever


def engine_with(retriever, thresholds: Thresholds) -> ConversationEngine:  # noqa: ANN001
    return ConversationEngine(AskService(retriever, thresholds))


def send(engine: ConversationEngine, channel: str = "web", user: str = "u1", **kw):  # noqa: ANN003, ANN201
    with session_scope() as session:
        return engine.handle(session, Inbound(channel=channel, user=user, **kw))


@pytest.fixture
def db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def test_confident_answer_is_a_short_card_with_more_feedback_and_person_buttons(retriever) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, ALWAYS_ANSWER), text="Thủ tục đăng ký khai sinh cho con")
    assert outcome.status == "answered"
    card = outcome.replies[0]
    assert card.text.startswith("📄 ")
    for label in ("Hồ sơ cần có", "Lệ phí", "Thời gian giải quyết", "Nơi nộp", "Nộp trực tuyến"):
        assert label in card.text
    for label in ("Các bước", "Căn cứ pháp lý", "Mã thủ tục"):  # behind the buttons
        assert label not in card.text
    slug = card.buttons[0].payload.split(":")[1]
    assert [b.payload for b in card.buttons] == [f"c:{slug}:full", f"c:{slug}:steps", f"c:{slug}:legal_basis"] + [
        "f:+",
        "f:-",
        "h",
    ]
    assert all(b.label.split(" ", 1)[1] for b in card.buttons)  # words beside every emoji
    assert card.blocks[0] == {"type": "heading", "text": card.text.split("\n")[0]}


def test_english_question_gets_an_english_card(retriever) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, ALWAYS_ANSWER), text="How do I register the birth of my baby?")
    assert "Documents" in outcome.replies[0].text
    assert "File online" in outcome.replies[0].text
    assert outcome.replies[0].buttons[0].label == "📋 Full card"


def test_card_buttons_open_the_full_card_and_its_parts(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, NEVER_ANSWER)
    short = send(engine, button="p:birth-registration").replies[0]
    full = send(engine, button="c:birth-registration:full")
    assert full.status == "answered"
    text = full.replies[0].text
    for label in ("Hồ sơ cần có", "Lệ phí", "Các bước", "Căn cứ pháp lý", "Kết quả", "Mã thủ tục", "Cập nhật"):
        assert label in text
    assert len(short.text) * 2 < len(text)
    assert [b.payload for b in full.replies[0].buttons] == ["f:+", "f:-", "h"]
    steps = send(engine, button="c:birth-registration:steps").replies[0]
    assert "Các bước" in steps.text
    assert "Lệ phí" not in steps.text
    assert [b.payload for b in steps.buttons] == ["c:birth-registration:full", "f:+", "f:-", "h"]
    out = db.scalars(select(ChatMessage).where(ChatMessage.direction == "out").order_by(ChatMessage.id)).all()
    assert [m.procedure for m in out] == ["birth-registration"] * 3  # each is an answer: 👍 / 👎 judge the last
    assert out[-1].blocks == steps.blocks
    assert out[-1].text == steps.text


def test_a_follow_up_about_one_part_is_answered_with_that_part_alone(retriever) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    assert send(engine, text="cấp hộ chiếu phổ thông").replies[0].buttons[0].payload == "c:passport-issuance:full"
    for follow_up, label in (("lệ phí bao nhiêu?", "Lệ phí"), ("nộp ở đâu?", "Nơi nộp"), ("what steps?", "Steps")):
        reply = send(engine, text=follow_up).replies[0]
        assert f"{label}:" in reply.text, follow_up
        others = {"Lệ phí", "Nơi nộp", "Hồ sơ cần có", "Thời gian giải quyết", "Fees", "Documents"} - {label}
        assert [o for o in others if f"{o}:" in reply.text] == [], follow_up
        assert reply.buttons[0].payload == "c:passport-issuance:full"
        assert [b["type"] for b in reply.blocks] == ["heading", "list" if label == "Steps" else "field", "note"]


def test_an_aspect_the_card_lacks_offers_the_short_card(retriever) -> None:  # noqa: ANN001
    engine = ConversationEngine(AskService(retriever, NEVER_ANSWER))
    with session_scope() as session:
        outcome = engine._card(  # noqa: SLF001 - how the follow-up detection asks for one part
            session, _conversation(session), "birth-registration", "vi", status="answered", part="legal_basis"
        )
        assert "Căn cứ pháp lý" in outcome.replies[0].text
        proc = session.scalar(select(Procedure).where(Procedure.slug == "birth-registration"))
        proc.text("vi").legal_basis = []
        session.flush()
        empty = engine._card(  # noqa: SLF001
            session, _conversation(session), "birth-registration", "vi", status="answered", part="legal_basis"
        )
    assert "Tôi chưa có thông tin “Căn cứ pháp lý”" in empty.replies[0].text
    payloads = [b.payload for b in empty.replies[0].buttons]
    assert payloads[:2] == ["c:birth-registration:full", "c:birth-registration:short"]


def _conversation(session: Session) -> Conversation:
    conv = session.scalar(select(Conversation).where(Conversation.user_key == "direct"))
    if conv is None:
        conv = Conversation(channel="web", user_key="direct", state={})
        session.add(conv)
        session.flush()
    return conv


@pytest.mark.parametrize(
    "payload", ["c:no-such-procedure:full", "c:birth-registration:price", "c:birth-registration", "c::full", "c:"]
)
def test_a_card_button_for_an_unknown_procedure_or_part_has_expired(retriever, payload: str) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, NEVER_ANSWER), button=payload)
    assert outcome.status == "expired"
    assert outcome.replies[0].text.startswith("Nút này không còn hiệu lực")


def test_the_greeting_offers_example_questions_and_topics(retriever) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    greeting = send(engine, text="/start").replies[0]
    payloads = [b.payload for b in greeting.buttons]
    assert payloads == ["q:0", "q:1", "q:2", "t:identity", "t:civil-status", "t:", "h"]
    assert [b.label for b in greeting.buttons[:3]] == EXAMPLE_QUESTIONS["vi"]
    assert greeting.buttons[3].label == "🆔 Căn cước, hộ chiếu"
    example = send(engine, button="q:1")
    assert example.status == "answered"  # answered as if typed
    assert example.replies[0].text.startswith("📄 ")
    assert send(engine, button="t:").replies[0].buttons[0].label == "🏪 Kinh doanh"
    assert send(engine, button="q:9").status == "expired"
    english = send(engine, user="u-en", text="/start", lang_hint="en").replies[0]
    assert english.text.startswith("Hello!")
    assert english.buttons[0].label == EXAMPLE_QUESTIONS["en"][0]


def test_unsure_offers_three_candidates_and_a_person(retriever) -> None:  # noqa: ANN001
    engine = engine_with(retriever, NEVER_ANSWER)
    outcome = send(engine, text="đăng ký tạm trú")
    assert outcome.status == "clarify"
    payloads = [b.payload for b in outcome.replies[0].buttons]
    assert len(payloads) == 4
    assert payloads[-1] == "h"
    assert all(p.startswith("p:") for p in payloads[:3])
    chosen = send(engine, button=payloads[0])
    assert chosen.status == "answered"
    assert chosen.replies[0].text.startswith("📄 ")


def test_off_topic_is_declined_with_a_person_button(retriever) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, ALWAYS_DECLINE), text="Hôm nay trời có nắng không?")
    assert outcome.status == "declined"
    assert outcome.replies[0].buttons[-1].payload == "h"


def test_asking_for_a_person_opens_one_ticket_with_code_and_deadline(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    send(engine, text="đổi bằng lái xe hết hạn")
    outcome = send(engine, text="tôi muốn gặp cán bộ")
    assert outcome.status == "escalated"
    assert outcome.ticket
    assert outcome.ticket in outcome.replies[0].text
    again = send(engine, button="h")
    assert again.ticket == outcome.ticket  # one open ticket per conversation
    ticket = db.scalar(select(Ticket).where(Ticket.code == outcome.ticket))
    assert ticket.reason == "asked_for_person"
    assert ticket.status == "new"
    assert ticket.deadline > ticket.created_at
    assert any("bằng lái" in m["text"] for m in ticket.excerpt)
    listing = send(engine, text="/ticket")
    assert outcome.ticket in listing.replies[0].text


def test_official_owned_conversation_is_not_answered_by_the_bot(retriever) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    code = send(engine, text="tôi muốn gặp cán bộ").ticket
    with session_scope() as session:
        session.scalar(select(Ticket).where(Ticket.code == code)).status = "acknowledged"
    outcome = send(engine, text="đăng ký khai sinh")
    assert outcome.status == "forwarded"
    assert code in outcome.replies[0].text


def test_duplicate_update_is_processed_once(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    first = send(engine, channel="telegram", user="42", text="đăng ký kết hôn", external_id="1001")
    second = send(engine, channel="telegram", user="42", text="đăng ký kết hôn", external_id="1001")
    assert first.replies
    assert second.duplicate
    assert not second.replies
    assert db.scalar(select(func.count(InboundUpdate.id))) == 1
    assert db.scalar(select(func.count(OutboxMessage.id))) == 1


def test_push_channels_queue_replies_split_to_their_limit(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    user = "8765432109876543210"
    send(engine, channel="zalo", user=user, button="c:construction-permit-house:full", reply_to="m1")
    parts = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert len(parts) >= 2  # the full card is longer than one Zalo message
    assert all(len(p.text) <= 2000 for p in parts)
    assert all(p.blocks is None for p in parts)  # Zalo shows plain text
    assert parts[0].reply_to == "m1"
    assert parts[0].recipient == user
    assert parts[-1].buttons
    assert all(not p.buttons for p in parts[:-1])
    send(engine, channel="web", user="w", text="đăng ký khai sinh")
    assert db.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.channel == "web")) == 0


def test_telegram_parts_carry_their_blocks(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    send(engine, channel="telegram", user="42", button="c:construction-permit-house:full")
    reply = db.scalar(select(ChatMessage).where(ChatMessage.direction == "out"))
    parts = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert parts
    assert all(p.blocks for p in parts)
    assert all(p.text == plain_text(p.blocks) for p in parts)
    assert all(utf16_len(p.text) <= 4096 for p in parts)
    assert [b for p in parts for b in p.blocks] == reply.blocks  # the card's own blocks, none cut at this size
    send(engine, channel="telegram", user="42", text="/help")
    assert db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first().blocks is None


@pytest.mark.parametrize(
    ("text", "status"),
    [("", "empty"), ("🙂🙂🙂", "empty"), ("\u200b\u200f\u202e", "empty"), ("x" * 10_000, "too_long")],
)
def test_bad_messages_get_a_clear_reply_and_are_kept(retriever, db: Session, text: str, status: str) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, ALWAYS_ANSWER), text=text)
    assert outcome.status == status
    assert outcome.replies[0].text
    assert db.scalar(select(func.count(ChatMessage.id)).where(ChatMessage.direction == "in")) == 1


def test_markup_in_a_question_stays_plain_text(retriever) -> None:  # noqa: ANN001
    outcome = send(engine_with(retriever, NEVER_ANSWER), text="<b>khai sinh</b> **con** [x](http://evil)")
    assert outcome.status == "clarify"
    assert "<" not in outcome.replies[0].text


def test_non_text_message_gets_a_text_only_reply(retriever) -> None:  # noqa: ANN001
    assert send(engine_with(retriever, ALWAYS_ANSWER), kind="sticker").status == "unsupported"


def test_commands(retriever) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    assert "Xin chào" in send(engine, text="/start").replies[0].text
    assert "/topics" in send(engine, text="/help").replies[0].text
    topics = send(engine, text="/topics").replies[0].buttons
    assert "t:civil-status" in [b.payload for b in topics]
    in_topic = send(engine, button="t:civil-status").replies[0].buttons
    assert "p:birth-registration" in [b.payload for b in in_topic]
    assert send(engine, text="/lang en").replies[0].text == "Language set to English."
    assert "How to use" in send(engine, text="/help").replies[0].text
    assert send(engine, button="zz:unknown").status == "expired"


def test_feedback_is_stored_and_thumbs_down_offers_an_official(retriever, db: Session) -> None:  # noqa: ANN001
    engine = engine_with(retriever, ALWAYS_ANSWER)
    send(engine, text="đăng ký kết hôn")
    assert send(engine, button="f:+").status == "feedback"
    down = send(engine, button="f:-")
    assert down.replies[0].buttons[0].payload == "h"
    values = db.scalars(select(Feedback.value)).all()
    assert values == [-1]  # one vote per answer; the citizen changed their mind


def test_state_survives_a_restart(retriever, db: Session) -> None:  # noqa: ANN001
    send(engine_with(retriever, NEVER_ANSWER), text="/lang en")
    fresh = engine_with(retriever, NEVER_ANSWER)  # a new process would build a new engine like this
    assert "How to use" in send(fresh, text="/help").replies[0].text
    conv = db.scalar(select(Conversation))
    assert conv.lang == "en"


def test_reply_latency_is_logged(retriever, db: Session) -> None:  # noqa: ANN001
    send(engine_with(retriever, ALWAYS_ANSWER), text="đăng ký khai tử")
    out = db.scalar(select(ChatMessage).where(ChatMessage.direction == "out"))
    assert out.latency_ms is not None
    assert out.latency_ms >= 0
    assert out.status == "answered"
    assert out.procedure


def test_a_retired_procedure_points_to_its_successor_or_says_it_no_longer_applies(retriever) -> None:  # noqa: ANN001
    from knowledge import versions
    from knowledge.models import utcnow

    engine = engine_with(retriever, NEVER_ANSWER)
    with session_scope() as session:
        versions.retire(
            session,
            "birth-registration",
            author="root",
            role="admin",
            reason="test",
            now=utcnow(),
            successor="death-registration",
        )
    pressed = send(engine, button="p:birth-registration")  # a button offered before the retirement
    assert pressed.replies[0].text.startswith("Thủ tục “Đăng ký khai sinh” không còn áp dụng")
    assert pressed.replies[1].text.startswith("📄 Đăng ký khai tử")
    part = send(engine, button="c:birth-registration:fees")  # a card button follows the successor, with its part
    assert part.replies[1].text.startswith("📄 Đăng ký khai tử\n\nLệ phí")
    assert part.replies[1].buttons[0].payload == "c:death-registration:full"
    with session_scope() as session:
        versions.retire(session, "death-registration", author="root", role="admin", reason="test", now=utcnow())
    gone = send(engine, user="u2", button="p:death-registration")
    assert gone.status == "retired"
    assert "không còn áp dụng" in gone.replies[0].text
    assert [b.payload for b in gone.replies[0].buttons] == ["h"]
