"""Asking as if drafts were published: the answer an admin will get before they publish, nothing saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.errors import NotFound
from knowledge import versions
from knowledge.service import card_of, get_procedure
from retrieval.corpus import build_corpus
from retrieval.embedders import Embedder
from retrieval.retriever import Retriever, VectorCache
from retrieval.service import AskResult, AskService


@dataclass
class Preview:
    """The answer with the drafts in place, and the card it would show."""

    result: AskResult
    card: dict[str, Any] | None
    drafts: list[str]  # the slugs whose drafts were in place


def preview_ask(
    session: Session,
    question: str,
    embedder: Embedder,
    *,
    slugs: list[str] | None = None,
    lang: str | None = None,
    settings: Settings | None = None,
) -> Preview:
    """Answer the question from an index built with the open drafts of `slugs` (all open drafts when None).

    The drafts are put in place in memory only: the database and the running index stay as they are.
    """
    settings = settings or get_settings()
    drafts = [d for d in versions.open_drafts(session) if slugs is None or d.slug in slugs]
    missing = set(slugs or []) - {d.slug for d in drafts}
    if missing:
        raise NotFound(f"no draft for {', '.join(sorted(missing))}")
    overrides = {d.slug: versions.preview_procedure(versions.validated(d.record, slug=d.slug)) for d in drafts}
    corpus = build_corpus(session, overrides)
    retriever = Retriever.build(
        corpus, embedder, version="preview", cache=VectorCache(settings.index_dir / "vectors", embedder)
    )
    result = AskService(retriever).ask(question, lang=lang)
    card = None
    if result.procedure:
        proc = overrides.get(result.procedure) or get_procedure(session, result.procedure)
        card = card_of(proc, result.lang)
    return Preview(result, card, sorted(overrides))
