"""Card rendering and clean splitting of long messages."""

from __future__ import annotations

import pytest

from bot.cards import TELEGRAM_LIMIT, ZALO_LIMIT, render_card, split_message

CARD = {
    "title": "Cấp lại thẻ căn cước",
    "summary": "Khi thẻ bị mất hoặc hư hỏng.",
    "who": "Công dân Việt Nam",
    "documents": [f"Giấy tờ số {i}" for i in range(20)],
    "fees": "70.000 đồng",
    "processing_time": "7 ngày làm việc",
    "where_to_file": "Công an cấp xã",
    "steps": ["Nộp hồ sơ", "Nhận kết quả"],
    "online_link": "https://dichvucong.gov.vn/",
    "legal_basis": ["Luật Căn cước 2023"],
    "code": "1.014064",
    "last_verified": "2026-11-27",
}


def test_card_has_every_section_in_order() -> None:
    text = render_card(CARD, "vi")
    order = [
        "Cấp lại thẻ căn cước",
        "Ai được làm",
        "Hồ sơ cần có",
        "Lệ phí",
        "Thời gian giải quyết",
        "Nơi nộp",
        "Các bước",
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
    assert "…" in text


def test_english_card_labels() -> None:
    text = render_card(CARD, "en")
    assert "Documents:" in text
    assert "Processing time:" in text
    assert "Public Service Portal" in text


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
