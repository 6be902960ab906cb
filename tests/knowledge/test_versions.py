"""Knowledge-base versions on the real database: drafts and publication, who may do what, stale edits, history,
roll-back, retirement, verification, and the record written exactly as published."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from knowledge import versions
from knowledge.models import FaqEntry, Procedure
from knowledge.service import ensure_seeded, procedure_card

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
SLUG = "passport-issuance"


@pytest.fixture
def kb(session: Session) -> Session:
    ensure_seeded(session)
    return session


def record(session: Session, slug: str = SLUG) -> dict:
    return copy.deepcopy(versions.live_record(versions.get_live(session, slug)))


def test_a_supervisor_drafts_an_admin_publishes_and_the_revision_counts_up(kb: Session) -> None:
    changed = record(kb)
    changed["vi"]["fees"] = "Miễn phí"
    draft = versions.save_draft(kb, changed, author="sup", role="supervisor", reason="new fee", now=NOW, slug=SLUG)
    assert (draft.state, draft.base_revision) == ("draft", 0)
    assert draft.diff == [{"field": "vi.fees", "before": record(kb)["vi"]["fees"], "after": "Miễn phí"}]
    assert procedure_card(kb, SLUG, "vi")["fees"] != "Miễn phí"  # a draft changes nothing live
    with pytest.raises(PermissionDenied, match="only admins"):
        versions.publish(kb, SLUG, publisher="sup", role="supervisor", now=NOW)
    with pytest.raises(PermissionDenied, match="supervisors and admins"):
        versions.save_draft(kb, changed, author="off", role="official", reason="", now=NOW, slug=SLUG)
    proc = versions.publish(kb, SLUG, publisher="root", role="admin", now=NOW)
    assert (proc.revision, proc.origin) == (1, "admin")
    assert procedure_card(kb, SLUG, "vi")["fees"] == "Miễn phí"
    numbers = [(v.number, v.state, v.author, v.published_by) for v in versions.history(kb, SLUG)]
    assert numbers == [(1, "published", "sup", "root"), (0, "published", "system", "system")]  # the original kept
    assert versions.open_draft(kb, SLUG) is None


def test_a_stale_edit_and_a_stale_draft_are_refused(kb: Session) -> None:
    first = record(kb)
    versions.save_draft(kb, first, author="sup", role="supervisor", reason="", now=NOW, slug=SLUG, if_match=0)
    changed = record(kb)
    changed["vi"]["summary"] = "Tóm tắt mới"
    versions.save_and_publish(kb, changed, author="root", role="admin", reason="", now=NOW, slug=SLUG, if_match=0)
    with pytest.raises(Conflict, match="revision 1, the edit started from 0"):
        versions.save_draft(kb, first, author="sup", role="supervisor", reason="", now=NOW, slug=SLUG, if_match=0)
    # the supervisor's draft was not dropped by the direct publication: publishing it asks for it to be redone
    waiting = versions.open_draft(kb, SLUG)
    assert waiting is not None
    assert waiting.author == "sup"
    with pytest.raises(Conflict, match="edit it again on top"):
        versions.publish(kb, SLUG, publisher="root", role="admin", now=NOW)


def test_verify_retire_restore_keep_a_waiting_draft(kb: Session) -> None:
    versions.save_draft(kb, record(kb), author="sup", role="supervisor", reason="later", now=NOW, slug=SLUG)
    proc = versions.verify(kb, SLUG, author="root", role="admin", today=dt.date(2026, 12, 1), now=NOW)
    assert proc.last_verified == dt.date(2026, 12, 1)
    assert versions.open_draft(kb, SLUG).reason == "later"
    retired = versions.retire(
        kb, SLUG, author="root", role="admin", reason="merged", now=NOW, successor="id-card-reissue"
    )
    assert (retired.status, retired.successor_slug) == ("retired", "id-card-reissue")
    assert retired.retired_at == NOW
    with pytest.raises(Invalid, match="no published procedure 'nowhere'"):
        versions.retire(kb, "death-registration", author="root", role="admin", reason="", now=NOW, successor="nowhere")
    with pytest.raises(Conflict, match="not retired"):
        versions.restore(kb, "death-registration", author="root", role="admin", reason="", now=NOW)
    restored = versions.restore(kb, SLUG, author="root", role="admin", reason="", now=NOW)
    assert (restored.status, restored.successor_slug, restored.retired_at) == ("published", None, None)
    assert versions.open_draft(kb, SLUG).reason == "later"


def test_a_roll_back_publishes_the_old_content_as_a_new_version(kb: Session) -> None:
    original = record(kb)
    changed = record(kb)
    changed["vi"]["fees"] = "Miễn phí"
    changed["vi"]["documents"] = []
    changed["en"] = None  # the English text goes away entirely
    versions.save_and_publish(kb, changed, author="root", role="admin", reason="", now=NOW, slug=SLUG)
    proc = versions.get_live(kb, SLUG)
    assert {t.lang for t in proc.texts} == {"vi", "ko", "ru", "pl"}
    assert proc.text("vi").documents == []  # emptied, not kept from before
    versions.rollback(kb, SLUG, 0, author="root", role="admin", reason="", now=NOW + dt.timedelta(minutes=1))
    assert record(kb)["vi"] == original["vi"]
    assert record(kb)["en"] == original["en"]
    latest = versions.history(kb, SLUG)[0]
    assert (latest.number, latest.reason) == (2, "roll back to version 0")
    with pytest.raises(NotFound, match="no published version 9"):
        versions.rollback(kb, SLUG, 9, author="root", role="admin", reason="", now=NOW)


def test_faq_entries_of_a_procedure_are_replaced_and_portal_ones_stay(kb: Session) -> None:
    proc = versions.get_live(kb, SLUG)
    kb.add(FaqEntry(external_id="portal:1", source="portal", lang="vi", questions=["Hỏi thật"], procedures=[proc]))
    kb.flush()
    changed = record(kb)
    changed["faq"] = [{"lang": "vi", "questions": ["xin sổ xanh đi nước ngoài"], "answer": "Làm hộ chiếu."}]
    versions.save_and_publish(kb, changed, author="root", role="admin", reason="", now=NOW, slug=SLUG)
    kept = kb.scalars(select(FaqEntry).where(FaqEntry.procedures.any(Procedure.slug == SLUG))).all()
    assert sorted((f.source, f.questions[0]) for f in kept) == [
        ("admin", "xin sổ xanh đi nước ngoài"),
        ("portal", "Hỏi thật"),
    ]
    assert [e.questions for e in versions.faq_entries(kb, search="so xanh")] == [["xin sổ xanh đi nước ngoài"]]


def test_bad_records_are_refused_with_every_field_named(kb: Session) -> None:
    bad = record(kb)
    bad["vi"]["title"] = ""
    bad["vi"]["fees"] = "x" * 70_000
    bad["category"] = 5
    with pytest.raises(Invalid) as refused:
        versions.save_draft(kb, bad, author="root", role="admin", reason="", now=NOW, slug=SLUG)
    message = str(refused.value)
    assert "nothing saved" in message
    for field in ("'vi.title'", "'vi.fees'", "'category'"):
        assert field in message
    with pytest.raises(Invalid, match="the address names"):
        versions.save_draft(kb, record(kb), author="root", role="admin", reason="", now=NOW, slug="other-slug")
    clash = record(kb, "death-registration")
    clash["code"] = versions.get_live(kb, SLUG).code
    with pytest.raises(Invalid, match="already belongs to procedure 'passport-issuance'"):
        versions.save_and_publish(kb, clash, author="root", role="admin", reason="", now=NOW, slug="death-registration")
    with pytest.raises(Invalid, match="status"):
        versions.save_draft(kb, {**record(kb), "status": "gone"}, author="root", role="admin", reason="", now=NOW)
    with pytest.raises(Invalid, match="reason"):
        versions.save_draft(kb, record(kb), author="root", role="admin", reason="r" * 2000, now=NOW, slug=SLUG)


def test_a_new_procedure_and_the_change_feed(kb: Session) -> None:
    new = {"slug": "fishing-licence", "category": "agriculture", "vi": {"title": "Cấp giấy phép khai thác thủy sản"}}
    draft = versions.save_draft(kb, new, author="sup", role="supervisor", reason="missing", now=NOW)
    assert versions.get_live(kb, "fishing-licence") is None
    assert draft.diff[0]["before"] is None
    versions.publish(kb, "fishing-licence", publisher="root", role="admin", now=NOW + dt.timedelta(seconds=1))
    assert versions.get_live(kb, "fishing-licence").revision == 1
    feed = versions.recent_changes(kb, since=NOW)
    assert [v.slug for v in feed] == ["fishing-licence"]
    assert versions.recent_changes(kb, since=NOW + dt.timedelta(days=1)) == []
    page, total = versions.search_procedures(kb, search="thủy sản")
    assert ([p.slug for p in page], total) == (["fishing-licence"], 1)
    stale, _ = versions.search_procedures(kb, verified_before=dt.date(2020, 1, 1), origin="admin")
    assert [p.slug for p in stale] == ["fishing-licence"]  # never verified
    with pytest.raises(NotFound, match="has no draft"):
        versions.discard_draft(kb, "fishing-licence", role="admin")
