"""Cards of the right size (short, one aspect, full), their blocks and Telegram HTML, and clean splitting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cards import (
    ASPECTS,
    TELEGRAM_LIMIT,
    ZALO_LIMIT,
    brief,
    plain_text,
    render_card,
    split_blocks,
    split_message,
    telegram_html,
    utf16_len,
)
from bot.texts import CARD_LABELS
from tests.bot.telegram_standin import parse_html

CARD = {
    "slug": "id-card-reissue",
    "title": "Cấp lại thẻ căn cước",
    "summary": "Khi thẻ bị mất hoặc hư hỏng.",
    "who": "Công dân Việt Nam",
    "conditions": "Thẻ bị mất hoặc hư hỏng",
    "documents": [f"Giấy tờ số {i}" for i in range(20)],
    "fees": "70.000 đồng",
    "processing_time": "7 ngày làm việc",
    "where_to_file": "Công an cấp xã",
    "steps": ["Nộp hồ sơ", "Nhận kết quả"],
    "result": "Thẻ căn cước",
    "online_link": "https://dichvucong.gov.vn/",
    "legal_basis": ["Luật Căn cước 2023"],
    "code": "1.014064",
    "last_verified": "2026-11-27",
}
HOSTILE = "<b>x</b> & <script>alert(1)</script> &amp; 👨‍👩‍👧"
CURATED = sorted((Path(__file__).resolve().parents[2] / "knowledge" / "seed" / "curated").glob("*.yaml"))
ASPECT_LABELS = {key: CARD_LABELS[key]["vi"] for key in ASPECTS}


def bundled_cards() -> list[tuple[str, dict[str, Any]]]:
    """Every bundled procedure as procedure_card shapes it, in Vietnamese and English."""
    cards = []
    for path in CURATED:
        for record in yaml.safe_load(path.read_text(encoding="utf-8")):
            for lang in ("vi", "en"):
                fields = {k: v for k, v in record[lang].items() if k != "aliases"}
                common = {k: record.get(k) for k in ("slug", "code", "online_link", "last_verified")}
                cards.append((lang, {**common, **fields, "last_verified": str(common["last_verified"])}))
    return cards


# -- sizes and parts ------------------------------------------------------------------------------------


def test_full_card_has_every_section_in_order() -> None:
    text = render_card(CARD, "vi", "full").text
    order = [
        "Cấp lại thẻ căn cước",
        "Khi thẻ bị mất",
        "Ai được làm",
        "Điều kiện",
        "Hồ sơ cần có",
        "Lệ phí",
        "Thời gian giải quyết",
        "Nơi nộp",
        "Các bước",
        "Kết quả",
        "Nộp trực tuyến",
        "Căn cứ pháp lý",
        "Mã thủ tục: 1.014064",
        "Cập nhật: 2026-11-27",
        "Cổng Dịch vụ công",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert "Giấy tờ số 11" in text
    assert "Giấy tờ số 12" not in text
    assert "… và 8 mục khác" in text


def test_english_card_labels() -> None:
    full = render_card(CARD, "en", "full").text
    assert "Documents:" in full
    assert "Processing time:" in full
    assert "Public Service Portal" in full
    assert "Fees: 70.000 đồng" in render_card(CARD, "en").text
    assert "Documents:" in render_card(CARD, "ko").text  # other languages get the English labels


def test_short_card_has_the_essentials_and_leaves_the_rest_to_buttons() -> None:
    text = render_card(CARD, "vi").text
    for expected in ("📄 Cấp lại thẻ căn cước", "Ai được làm", "Lệ phí: 70.000 đồng", "Thời gian giải quyết: 7 ngày"):
        assert expected in text
    assert "Nơi nộp: Công an cấp xã" in text
    assert "Nộp trực tuyến: https://dichvucong.gov.vn/" in text
    assert "• Giấy tờ số 2" in text
    assert "Giấy tờ số 3" not in text
    assert "… và 17 mục khác" in text
    for elsewhere in ("Các bước", "Căn cứ pháp lý", "Kết quả", "Điều kiện", "Mã thủ tục", "Khi thẻ bị mất"):
        assert elsewhere not in text
    assert render_card(CARD, "vi", "short") == render_card(CARD, "vi")


@pytest.mark.parametrize(("lang", "card"), bundled_cards(), ids=lambda v: v if isinstance(v, str) else v["slug"])
def test_every_bundled_short_card_is_a_fraction_of_the_full_one(lang: str, card: dict[str, Any]) -> None:
    short = render_card(card, lang).text
    full = render_card(card, lang, "full").text
    assert len(short) <= 1400, "a short card fits about two phone screens"
    assert len(short) * 2 < len(full)
    for key in ("fees", "processing_time", "where_to_file"):
        assert f"{CARD_LABELS[key][lang]}:" in short
    for key in ("documents", "steps", "legal_basis", "fees", "where_to_file", "who"):  # the full card has it all
        value = card[key]
        assert all(item in full for item in value[:6]) if isinstance(value, list) else value.strip() in full


@pytest.mark.parametrize("aspect", ASPECTS)
def test_an_aspect_answer_is_the_title_and_that_part_only(aspect: str) -> None:
    rendered = render_card(CARD, "vi", aspect)
    assert rendered.text.startswith("📄 Cấp lại thẻ căn cước\n\n")
    assert ASPECT_LABELS[aspect] in rendered.text
    others = [label for key, label in ASPECT_LABELS.items() if key != aspect]
    assert [label for label in others if label in rendered.text] == []
    assert [b["type"] for b in rendered.blocks] == ["heading", _kind(aspect), "note"]
    if aspect == "documents":
        assert "Giấy tờ số 11" in rendered.text  # the whole list, not the short card's first few


def _kind(aspect: str) -> str:
    return {"online_link": "link", "documents": "list", "steps": "list", "legal_basis": "list"}.get(aspect, "field")


def test_an_aspect_the_card_lacks_is_said_politely() -> None:
    card = {**CARD, "fees": "   ", "legal_basis": []}
    for aspect, label in (("fees", "Lệ phí"), ("legal_basis", "Căn cứ pháp lý")):
        text = render_card(card, "vi", aspect).text
        assert f"Tôi chưa có thông tin “{label}” của thủ tục này" in text
    assert "I have no “Fees” for this procedure yet" in render_card(card, "en", "fees").text


def test_a_form_question_is_answered_with_the_documents_and_an_unknown_part_is_refused() -> None:
    assert render_card(CARD, "vi", "form") == render_card(CARD, "vi", "documents")
    with pytest.raises(ValueError, match="unknown card part"):
        render_card(CARD, "vi", "price")


def test_brief_cuts_after_a_clause_outside_brackets_else_at_a_word() -> None:
    fee = "Lệ phí 200.000 đồng/hộ chiếu (cấp mới); cấp lại do bị mất: 400.000 đồng. Miễn cho trẻ em dưới 14 tuổi."
    assert brief(fee, 70) == "Lệ phí 200.000 đồng/hộ chiếu (cấp mới) …"
    form = "Tờ khai (mẫu TK01; trẻ em dùng mẫu TK01a) nộp kèm ảnh 4x6 và hộ chiếu cũ còn giá trị sử dụng"
    assert brief(form, 60) == "Tờ khai (mẫu TK01; trẻ em dùng mẫu TK01a) nộp kèm ảnh 4x6…"
    assert brief("ngắn", 60) == "ngắn"


# -- blocks, plain text and Telegram HTML ------------------------------------------------------------


@pytest.mark.parametrize("part", ["short", "full", *ASPECTS])
def test_text_html_and_blocks_say_the_same(part: str) -> None:
    rendered = render_card(CARD, "vi", part)
    assert rendered.text == plain_text(rendered.blocks)
    visible, entities = parse_html(telegram_html(rendered.blocks))
    assert visible == rendered.text
    assert entities[0] == {"type": "bold", "offset": 0, "length": utf16_len("📄 Cấp lại thẻ căn cước")}
    assert entities[-1]["type"] == "italic"  # the small print


def test_hostile_knowledge_base_text_is_escaped_for_telegram() -> None:
    card = {key: HOSTILE if isinstance(value, str) else [HOSTILE] for key, value in CARD.items()}
    for part in ("short", "full", "fees"):
        rendered = render_card(card, "vi", part)
        source = telegram_html(rendered.blocks)
        assert "<script>" not in source
        assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;" in source
        visible, entities = parse_html(source)  # Telegram's parser accepts it: nothing unbalanced, nothing unknown
        assert visible == rendered.text
        assert HOSTILE in visible
        assert {e["type"] for e in entities} <= {"bold", "italic"}


# -- splitting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [TELEGRAM_LIMIT, ZALO_LIMIT, 300])
def test_split_keeps_every_line_whole_and_under_the_limit(limit: int) -> None:
    text = "\n".join(f"• dòng số {i} " + "chữ " * (i % 30) for i in range(400))
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert "\n".join(parts) == text


def test_a_single_overlong_line_is_cut_between_words() -> None:
    text = " ".join(["từ"] * 3000)
    parts = split_message(text, 2000)
    assert all(len(p) <= 2000 for p in parts)
    assert all(not p.startswith(" ") and not p.endswith("t") for p in parts[:-1])
    assert " ".join(parts).split() == text.split()


def test_short_text_is_one_part() -> None:
    assert split_message("xin chào", 10) == ["xin chào"]


def test_emoji_count_twice_against_the_limit() -> None:
    text = "😀" * 3000  # 3,000 characters, 6,000 UTF-16 units: Telegram's count
    parts = split_message(text, TELEGRAM_LIMIT)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


def test_a_long_card_splits_between_blocks_with_its_labels_whole() -> None:
    card = {**CARD, "documents": [f"Giấy tờ {i}: " + "chi tiết " * 60 for i in range(12)], "fees": "phí " * 1500}
    blocks = render_card(card, "vi", "full").blocks
    parts = split_blocks(blocks, TELEGRAM_LIMIT)
    assert len(parts) >= 3
    texts = [plain_text(p) for p in parts]
    assert all(utf16_len(t) <= TELEGRAM_LIMIT for t in texts)
    assert texts[0].startswith("📄 Cấp lại thẻ căn cước")
    assert sum(t.count("Hồ sơ cần có:") for t in texts) == 1
    assert sum(t.count("Lệ phí:") for t in texts) == 1
    assert _words("\n".join(texts)) == _words(plain_text(blocks))


def _words(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- properties over any knowledge-base text -------------------------------------------------------------

# Any unicode but lone surrogates (not encodable, so never in the database), with markup and emoji (astral, two
# UTF-16 units each; joined families) made frequent; long fields repeat a random piece up to thousands of characters.
PIECES = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.sampled_from(list("<>&\"'/ \n;.") + ["&amp;", "<b>", "</i>", "👨‍👩‍👧", "😀", "𝕏", "Lệ phí: "]),
)
SHORT_TEXT = st.lists(PIECES, max_size=60).map("".join)


def _long(piece: str, size: int) -> str:
    piece = piece or "chữ 😀 "
    return (piece * (size // len(piece) + 1))[:size]


LONG_TEXT = st.builds(_long, SHORT_TEXT, st.integers(3000, 9000))
KB_TEXT = SHORT_TEXT | LONG_TEXT
KB_LIST = st.lists(SHORT_TEXT | st.builds(_long, SHORT_TEXT, st.integers(4000, 5000)), max_size=15)
CARDS = st.fixed_dictionaries(
    {
        "slug": st.just("p"),
        "title": KB_TEXT,
        "summary": KB_TEXT,
        "who": KB_TEXT,
        "conditions": KB_TEXT,
        "documents": KB_LIST,
        "fees": KB_TEXT,
        "processing_time": KB_TEXT,
        "where_to_file": KB_TEXT,
        "steps": KB_LIST,
        "result": KB_TEXT,
        "online_link": KB_TEXT,
        "legal_basis": KB_LIST,
        "code": st.none() | st.just("1.001193"),
        "last_verified": st.none() | st.just("2026-11-27"),
    }
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@PROPERTY
@given(card=CARDS, lang=st.sampled_from(["vi", "en", "ko"]), part=st.sampled_from(["short", "full", *ASPECTS]))
def test_telegram_parts_are_valid_html_within_the_limit(card: dict[str, Any], lang: str, part: str) -> None:
    rendered = render_card(card, lang, part)
    parts = split_blocks(rendered.blocks, TELEGRAM_LIMIT)
    assert parts
    for blocks in parts:
        visible, entities = parse_html(telegram_html(blocks))  # balanced, escaped, only Telegram's tags
        assert visible == plain_text(blocks)
        assert visible.strip()
        assert utf16_len(visible) <= TELEGRAM_LIMIT
        for entity in entities:  # a bold label or heading lies whole inside its part
            assert entity["length"] > 0
            assert entity["offset"] >= 0
            assert entity["offset"] + entity["length"] <= utf16_len(visible)
    assert _words("".join(plain_text(p) for p in parts)) == _words(rendered.text)  # nothing lost but spaces


@PROPERTY
@given(
    text=KB_TEXT | st.builds(_long, SHORT_TEXT, st.integers(9000, 12_000)),
    limit=st.sampled_from([TELEGRAM_LIMIT, ZALO_LIMIT, 50]),
)
def test_plain_parts_stay_within_the_limit_in_utf16(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(utf16_len(p) <= limit for p in parts)
    assert _words("".join(parts)) == _words(text)
