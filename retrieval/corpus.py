"""What retrieval indexes of the knowledge base: one entry per procedure and its searchable views."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from knowledge.models import FaqEntry, Procedure
from retrieval.normalize import clean, fold, has_diacritics

# How many characters of a long field go into the lexical document: enough for its key words,
# short enough that one verbose record does not drown the title under length normalisation.
FIELD_CHARS = 600


@dataclass
class ProcedureEntry:
    """The facts of a procedure that a search result needs."""

    slug: str
    code: str | None
    title_vi: str
    title_en: str
    category: str


@dataclass
class View:
    """One searchable text of a procedure (its title, an alias, a FAQ question...)."""

    procs: list[int]
    kind: str
    text: str


@dataclass
class Corpus:
    """Everything the indexes are built from, in a stable order."""

    procedures: list[ProcedureEntry] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # one lexical document per procedure
    views: list[View] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for persisting next to an index."""
        return {"procedures": [asdict(p) for p in self.procedures]}

    @staticmethod
    def procedures_from_json(data: dict[str, Any]) -> list[ProcedureEntry]:
        """Procedure entries back from persisted data."""
        return [ProcedureEntry(**p) for p in data["procedures"]]


def _with_folded(text: str) -> list[str]:
    """The text, plus its unaccented form: dense models match unaccented queries far better to it."""
    text = clean(text)
    return [text, fold(text)] if has_diacritics(text) else [text]


def build_corpus(session: Session) -> Corpus:
    """Read every procedure and FAQ entry into the corpus retrieval indexes."""
    corpus = Corpus()
    procs = session.scalars(select(Procedure).options(selectinload(Procedure.texts)).order_by(Procedure.id)).all()
    position = {p.id: i for i, p in enumerate(procs)}
    for i, proc in enumerate(procs):
        by_lang = {t.lang: t for t in proc.texts}
        vi, en = by_lang.get("vi"), by_lang.get("en")
        title_vi = vi.title if vi else (en.title if en else proc.slug)
        title_en = en.title if en else ""
        corpus.procedures.append(ProcedureEntry(proc.slug, proc.code, title_vi, title_en, proc.category))
        parts: list[str] = []
        for text in (vi, en):
            if text is None:
                continue
            # The title counts twice: it names the procedure, every other field only describes it.
            parts += [text.title, text.title, " ".join(text.aliases), text.summary[:FIELD_CHARS]]
            parts.append(" ".join(text.documents)[:FIELD_CHARS])
            for kind, value in (("title", text.title), ("summary", text.summary[:300])):
                if value:
                    corpus.views += [View([i], kind, v) for v in _with_folded(value)]
            for alias in text.aliases:
                corpus.views += [View([i], "alias", v) for v in _with_folded(alias)]
        corpus.documents.append(" ".join(p for p in parts if p))
    faqs = session.scalars(select(FaqEntry).options(selectinload(FaqEntry.procedures)).order_by(FaqEntry.id)).all()
    for faq in faqs:
        targets = [position[p.id] for p in faq.procedures if p.id in position]
        if not targets:
            continue
        for question in faq.questions:
            corpus.views += [View(targets, "faq", v) for v in _with_folded(question)]
    return corpus
