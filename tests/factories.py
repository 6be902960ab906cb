"""Small builders of valid records for tests."""

from __future__ import annotations

from typing import Any


def procedure_record(slug: str = "test-procedure", **overrides: Any) -> dict[str, Any]:
    """A valid procedure record in the import layout."""
    record: dict[str, Any] = {
        "slug": slug,
        "code": None,
        "category": "civil-status",
        "authority": "commune",
        "online_link": "https://dichvucong.gov.vn/",
        "source": "test",
        "last_verified": "2026-11-01",
        "vi": {
            "title": f"Thủ tục {slug}",
            "summary": "Tóm tắt",
            "steps": ["Nộp hồ sơ", "Nhận kết quả"],
            "documents": ["Tờ khai", "Giấy tờ tùy thân"],
            "fees": "Miễn phí",
            "processing_time": "3 ngày làm việc",
            "where_to_file": "UBND cấp xã",
            "legal_basis": ["Luật Hộ tịch 2014"],
            "aliases": ["thu tuc thu"],
        },
        "en": {"title": f"Procedure {slug}", "documents": ["Form", "ID"]},
        "faq": [{"lang": "vi", "questions": ["Câu hỏi một?", "Câu hỏi hai?"], "answer": "Trả lời."}],
    }
    record.update(overrides)
    return record
