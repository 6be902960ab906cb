"""ORM models of the knowledge base: procedures, their per-language texts, and FAQ entries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, UtcDateTime


def utcnow() -> dt.datetime:
    """Timezone-aware now, the only kind of datetime we store."""
    return dt.datetime.now(dt.UTC)


faq_procedures = Table(
    "faq_procedures",
    Base.metadata,
    Column("faq_id", ForeignKey("faq_entries.id", ondelete="CASCADE"), primary_key=True),
    Column("procedure_id", ForeignKey("procedures.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Procedure(Base):
    """One administrative procedure, curated or imported from the national database."""

    __tablename__ = "procedures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)
    category: Mapped[str] = mapped_column(String(200), default="")
    authority: Mapped[str] = mapped_column(Text, default="")
    online_link: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    origin: Mapped[str] = mapped_column(String(20), default="curated")  # curated | national | admin
    ministry: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(200), default="")
    last_verified: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # Kept while it runs (migration 0013): a retired procedure is never answered and names its successor; the
    # revision counts publications (0: as seeded or imported) and is what an edit's If-Match names.
    status: Mapped[str] = mapped_column(String(10), default="published", server_default="published")
    successor_slug: Mapped[str | None] = mapped_column(String(120))
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    texts: Mapped[list[ProcedureText]] = relationship(
        back_populates="procedure", cascade="all, delete-orphan", lazy="selectin"
    )
    faqs: Mapped[list[FaqEntry]] = relationship(secondary=faq_procedures, back_populates="procedures")

    def text(self, lang: str) -> ProcedureText | None:
        """The text in lang, else Vietnamese, else any."""
        by_lang = {t.lang: t for t in self.texts}
        return by_lang.get(lang) or by_lang.get("vi") or next(iter(by_lang.values()), None)


class ProcedureText(Base):
    """What a procedure says in one language."""

    __tablename__ = "procedure_texts"
    __table_args__ = (UniqueConstraint("procedure_id", "lang"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[int] = mapped_column(ForeignKey("procedures.id", ondelete="CASCADE"), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    who: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    documents: Mapped[list[str]] = mapped_column(JSON, default=list)
    fees: Mapped[str] = mapped_column(Text, default="")
    processing_time: Mapped[str] = mapped_column(Text, default="")
    where_to_file: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[str] = mapped_column(Text, default="")
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)

    procedure: Mapped[Procedure] = relationship(back_populates="texts")

    def as_dict(self) -> dict[str, Any]:
        """The text's fields as plain data."""
        return {name: getattr(self, name) for name in TEXT_FIELDS}


TEXT_FIELDS = (
    "title",
    "summary",
    "who",
    "steps",
    "documents",
    "fees",
    "processing_time",
    "where_to_file",
    "legal_basis",
    "result",
    "conditions",
    "aliases",
)


class FaqEntry(Base):
    """Question variants with one answer, tied to one or more procedures."""

    __tablename__ = "faq_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    lang: Mapped[str] = mapped_column(String(8), default="vi")
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40), default="curated")  # curated | portal | admin
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    procedures: Mapped[list[Procedure]] = relationship(
        secondary=faq_procedures, back_populates="faqs", lazy="selectin"
    )


class KbMeta(Base):
    """Small key-value facts about the knowledge base (e.g. which bundled seed it was loaded from)."""

    __tablename__ = "kb_meta"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ProcedureVersion(Base):
    """One change of a procedure: a draft until an admin publishes it; published ones are its history.

    `record` is the whole procedure in the import/export layout (plus status and successor), so that any version
    can be published again (a roll-back); `diff` lists the fields it changes against the revision it was based on.
    """

    __tablename__ = "procedure_versions"
    __table_args__ = (
        Index("ix_procedure_versions_slug_id", "slug", "id"),
        Index("ix_procedure_versions_published_at", "published_at"),
        Index("ix_procedure_versions_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120))
    number: Mapped[int | None] = mapped_column(Integer)  # the revision it became when published
    state: Mapped[str] = mapped_column(String(12))  # draft | published | superseded | discarded
    base_revision: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_by: Mapped[str | None] = mapped_column(String(80))
    published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
