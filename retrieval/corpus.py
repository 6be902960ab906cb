"""What retrieval indexes of the knowledge base: one entry per procedure and its searchable views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.yamlfiles import load_yaml
from knowledge.models import FaqEntry, Procedure, ProcedureText, faq_procedures
from knowledge.schemas import LANGS
from retrieval.normalize import DATA_DIR, clean, fold, has_diacritics

OFF_TOPIC = "offtopic"
# How many characters of a long field go into the lexical document: enough for its key words,
# short enough that one verbose record does not drown the title under length normalisation.
FIELD_CHARS = 600


@dataclass
class ProcedureEntry:
    """The facts of a procedure that a search result needs."""

    slug: str
    code: str | None
    category: str
    titles: dict[str, str]
    curated: bool = False  # written and checked by people, not imported from the national file

    def title(self, lang: str) -> str:
        """The title in lang, else English for foreign languages, else Vietnamese."""
        fallback = ("en", "vi") if lang != "vi" else ("vi",)
        for candidate in (lang, *fallback):
            if self.titles.get(candidate):
                return self.titles[candidate]
        return next(iter(self.titles.values()), self.slug)


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


def _with_folded(text: str, folded: bool = True) -> list[str]:
    """The text, plus its unaccented form: dense models match unaccented queries far better to it.

    Imported records skip the folded form: at 2,600 national procedures it would double the embedding
    time of a cold build, and the lexical index already matches their unaccented words.
    """
    text = clean(text)
    return [text, fold(text)] if folded and has_diacritics(text) else [text]


def build_corpus(session: Session, overrides: Mapping[str, Procedure | None] | None = None) -> Corpus:
    """Read every answerable procedure and FAQ entry into the corpus retrieval indexes (retired ones are left out).

    `overrides` replaces procedures by slug with other (unsaved) versions of them, None removing one: what the
    index would be if those drafts were published.
    """
    return corpus_of(*_snapshot(session), overrides or {})


@dataclass(eq=False)
class _Row:
    """A procedure, text, FAQ entry or link as plain values: what corpus_of reads of the models' attributes."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _snapshot(session: Session) -> tuple[list[Any], list[Any]]:
    """Answerable procedures with their texts and FAQ entries with their procedures, read as rows, not objects.

    Rows instead of mapped objects: at the national size this reads the knowledge base in a third of the time,
    which is most of what stands between a publication and the bot answering with it.
    """
    text_columns = [getattr(ProcedureText, c) for c in ("procedure_id", "lang", *_TEXT_FIELDS)]
    texts: dict[int, list[Any]] = {}
    for row in session.execute(select(*text_columns).order_by(ProcedureText.id)).mappings():
        texts.setdefault(row["procedure_id"], []).append(_Row(dict(row)))
    procs: list[Any] = []
    by_id: dict[int, Any] = {}
    columns = (Procedure.id, Procedure.slug, Procedure.code, Procedure.category, Procedure.origin, Procedure.status)
    for row in session.execute(select(*columns).where(Procedure.status != "retired").order_by(Procedure.id)):
        proc = _Row({**row._asdict(), "texts": texts.get(row.id, []), "faqs": []})
        procs.append(proc)
        by_id[row.id] = proc
    links: dict[int, list[Any]] = {}
    link_columns = (faq_procedures.c.faq_id, faq_procedures.c.procedure_id)
    for faq_id, procedure_id in session.execute(select(*link_columns).order_by(*link_columns)):
        if procedure_id in by_id:
            links.setdefault(faq_id, []).append(by_id[procedure_id])
    faqs = [
        _Row({"questions": row.questions, "source": row.source, "procedures": links.get(row.id, [])})
        for row in session.execute(select(FaqEntry.id, FaqEntry.questions, FaqEntry.source).order_by(FaqEntry.id))
    ]
    return procs, faqs


_TEXT_FIELDS = ("title", "summary", "aliases", "documents", "steps", "result", "conditions")


def corpus_of(procs: list[Any], faqs: list[Any], overrides: Mapping[str, Procedure | None]) -> Corpus:
    """The corpus of these procedures and FAQ entries, with some procedures replaced (see build_corpus)."""
    corpus = Corpus()
    kept = [p for p in procs if p.slug not in overrides]
    ordered = kept + [p for p in overrides.values() if p is not None and p.status != "retired"]
    position = {p.slug: i for i, p in enumerate(ordered)}
    for i, proc in enumerate(ordered):
        texts = sorted(proc.texts, key=lambda t: LANGS.index(t.lang) if t.lang in LANGS else len(LANGS))
        titles = {t.lang: t.title for t in texts}
        curated = proc.origin != "national"
        corpus.procedures.append(ProcedureEntry(proc.slug, proc.code, proc.category, titles, curated))
        parts: list[str] = []
        for text in texts:
            # The title counts twice: it names the procedure, every other field only describes it.
            parts += [text.title, text.title, " ".join(text.aliases), text.summary[:FIELD_CHARS]]
            parts += [" ".join(text.documents)[:FIELD_CHARS], " ".join(text.steps)[:FIELD_CHARS]]
            parts += [text.result[:300], text.conditions[:300]]
            for kind, value in (("title", text.title), ("summary", text.summary[:300])):
                if value:
                    corpus.views += [View([i], kind, v) for v in _with_folded(value, curated)]
            for alias in text.aliases:
                corpus.views += [View([i], "alias", v) for v in _with_folded(alias, curated)]
        parts.append(proc.category)
        corpus.documents.append(" ".join(p for p in parts if p))
    replaced_faqs = [faq for slug, proc in overrides.items() if proc is not None for faq in proc.faqs]
    for faq in [*faqs, *replaced_faqs]:
        own_of_replaced = faq.source != "portal" and any(p.slug in overrides for p in faq.procedures)
        if own_of_replaced and faq not in replaced_faqs:
            continue  # the replacing version carries its own FAQ entries
        targets = [position[p.slug] for p in faq.procedures if p.slug in position]
        if not targets:
            continue
        for question in faq.questions:
            corpus.views += [View(targets, "faq", v) for v in _with_folded(question, faq.source != "portal")]
    # Out-of-scope examples belong to no procedure: they tell the decision what "off-topic" looks like.
    corpus.views += [View([], OFF_TOPIC, v) for text in off_topic_examples() for v in _with_folded(text)]
    return corpus


def off_topic_examples() -> list[str]:
    """The bundled examples of messages outside the product's scope."""
    data = load_yaml((DATA_DIR / "off_topic.yaml").read_text(encoding="utf-8"))
    return [clean(str(text)) for text in data["examples"]]
