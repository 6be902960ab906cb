"""Scoring questions against the knowledge base: recall, MRR, wrong answers, off-topic handling, latency."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import Invalid
from knowledge.io import iter_jsonl
from retrieval.decision import ANSWERED, CLARIFY, DECLINED, ESCALATED
from retrieval.service import AskService

OTHER_LANGS = ("ko", "ru", "pl")
ABLATION_MODES = ("lexical", "dense")


@dataclass
class Question:
    """One evaluation line."""

    q: str
    expect: str | None = None
    expect_codes: list[str] | None = None
    lang: str | None = None
    labelled: bool = False  # has an 'expect' key (None there means off-topic)

    @property
    def group(self) -> str:
        """The table row this question counts in."""
        if self.expect_codes is not None:
            return self.lang or "portal"
        return self.lang or "?"


@dataclass
class Scored:
    """A question with its outcome."""

    question: Question
    answer: dict[str, Any]
    rank: int | None  # 1-based position of the expected procedure among candidates
    ablation_ranks: dict[str, int | None] = field(default_factory=dict)

    @property
    def in_scope(self) -> bool:
        """Expects a procedure (by slug or code)."""
        return self.question.expect is not None or bool(self.question.expect_codes)

    @property
    def off_topic(self) -> bool:
        """Labelled as outside the product's scope."""
        return self.question.labelled and self.question.expect is None and not self.question.expect_codes

    @property
    def answered_wrong(self) -> bool:
        """Answered with confidence, and wrongly: the worst outcome."""
        return self.in_scope and self.answer["status"] == ANSWERED and self.rank != 1


def read_questions(path: Path) -> list[Question]:
    """Questions of a JSON Lines file, with a clear error on a bad line."""
    questions: list[Question] = []
    for lineno, raw in iter_jsonl(path):
        if not isinstance(raw.get("q"), str):
            raise Invalid(f"{path}:{lineno}: expected an object with a string field 'q'")
        codes = raw.get("expect_codes")
        if codes is not None and not (isinstance(codes, list) and all(isinstance(c, str) for c in codes)):
            raise Invalid(f"{path}:{lineno}: field 'expect_codes' must be a list of strings")
        questions.append(Question(raw["q"], raw.get("expect"), codes, raw.get("lang"), "expect" in raw))
    return questions


def _rank(question: Question, candidates: list[dict[str, Any]]) -> int | None:
    for position, cand in enumerate(candidates, 1):
        if question.expect is not None and cand["slug"] == question.expect:
            return position
        if question.expect_codes and cand.get("code") in question.expect_codes:
            return position
    return None


def run(
    service: AskService,
    questions: Iterable[Question],
    *,
    ablation: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[Scored]:
    """Ask every question; for in-scope ones also rank with each side alone when ablation is on."""
    scored: list[Scored] = []
    for done, question in enumerate(questions, 1):
        result = service.ask(question.q, lang=None)
        answer = result.to_json()
        item = Scored(question, answer, _rank(question, answer["candidates"]))
        if ablation and item.in_scope:
            vector = service.retriever.embed_query(question.q)
            for mode in ABLATION_MODES:
                alone = service.retriever.search(question.q, mode=mode, query_vector=vector)
                cands = [{"slug": c.entry.slug, "code": c.entry.code} for c in alone.candidates]
                item.ablation_ranks[mode] = _rank(question, cands)
        scored.append(item)
        if progress:
            progress(done)
    return scored


def _recall(ranks: list[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else float("nan")


def _mrr(ranks: list[int | None]) -> float:
    return sum(1.0 / r for r in ranks if r) / len(ranks) if ranks else float("nan")


def _precision(in_scope: list[Scored], off: list[Scored]) -> float:
    answered = [s for s in in_scope + off if s.answer["status"] == ANSWERED]
    right = sum(1 for s in answered if s.in_scope and s.rank == 1)
    return right / len(answered) if answered else float("nan")


def metrics(items: list[Scored]) -> dict[str, float | int]:
    """The figures of one group of questions."""
    in_scope = [s for s in items if s.in_scope]
    off = [s for s in items if s.off_topic]
    ranks = [s.rank for s in in_scope]
    latencies = [s.answer["latency_ms"] for s in items]
    out: dict[str, float | int] = {
        "n": len(items),
        "in_scope": len(in_scope),
        "recall@1": _recall(ranks, 1),
        "recall@3": _recall(ranks, 3),
        "recall@5": _recall(ranks, 5),
        "mrr": _mrr(ranks),
        "answered_wrong": sum(s.answered_wrong for s in in_scope) / len(in_scope)
        if in_scope
        else float("nan"),
        "answered": sum(s.answer["status"] == ANSWERED for s in in_scope) / len(in_scope)
        if in_scope
        else float("nan"),
        # Of the questions the bot answered outright, the share it answered right (off-topic ones answered count
        # as wrong): what a citizen who gets an answer can trust.
        "precision": _precision(in_scope, off),
        # Of the in-scope questions it asked about, the share whose procedure is among the three offered.
        "clarify@3": _recall([s.rank for s in in_scope if s.answer["status"] == CLARIFY], 3),
        "off_topic": len(off),
        "off_topic_handled": (
            sum(s.answer["status"] in (DECLINED, ESCALATED) for s in off) / len(off) if off else float("nan")
        ),
        "p50_ms": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "p95_ms": float(np.percentile(latencies, 95)) if latencies else float("nan"),
    }
    for mode in ABLATION_MODES:
        mode_ranks = [s.ablation_ranks.get(mode) for s in in_scope if mode in s.ablation_ranks]
        if mode_ranks:
            out[f"{mode}:recall@1"] = _recall(mode_ranks, 1)
            out[f"{mode}:recall@5"] = _recall(mode_ranks, 5)
            out[f"{mode}:mrr"] = _mrr(mode_ranks)
    return out


def grouped(items: list[Scored]) -> dict[str, dict[str, float | int]]:
    """Figures per language group, for ko/ru/pl together, and for all questions."""
    groups: dict[str, list[Scored]] = {}
    for item in items:
        groups.setdefault(item.question.group, []).append(item)
    table = {name: metrics(group) for name, group in sorted(groups.items())}
    others = [s for s in items if s.question.group in OTHER_LANGS]
    if others:
        table["ko+ru+pl"] = metrics(others)
    table["all"] = metrics(items)
    return table


def format_table(table: dict[str, dict[str, float | int]]) -> str:
    """A plain-text table of the figures, one row per group."""
    cols = [
        ("n", "n"),
        ("in_scope", "in"),
        ("recall@1", "R@1"),
        ("recall@3", "R@3"),
        ("recall@5", "R@5"),
        ("mrr", "MRR"),
        ("answered", "answered"),
        ("answered_wrong", "ans-wrong"),
        ("precision", "precision"),
        ("clarify@3", "clarify@3"),
        ("off_topic", "off"),
        ("off_topic_handled", "off-handled"),
        ("p50_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
    ]
    lines = ["group      " + " ".join(f"{label:>11}" for _, label in cols)]
    for name, row in table.items():
        cells = []
        for key, _ in cols:
            value = row.get(key, float("nan"))
            cells.append(f"{value:>11d}" if isinstance(value, int) else f"{value:>11.3f}")
        lines.append(f"{name:<10} " + " ".join(cells))
    ablation = [(n, r) for n, r in table.items() if "lexical:recall@1" in r]
    if ablation:
        lines.append("")
        lines.append("ranker alone (in-scope questions)    R@1     R@5     MRR")
        for name, row in ablation:
            lines.append(
                f"{name:<10} hybrid               {row['recall@1']:7.3f} {row['recall@5']:7.3f} {row['mrr']:7.3f}"
            )
            for mode in ABLATION_MODES:
                label = "bm25 alone" if mode == "lexical" else "dense alone"
                lines.append(
                    f"{name:<10} {label:<20} {row[mode + ':recall@1']:7.3f} {row[mode + ':recall@5']:7.3f}"
                    f" {row[mode + ':mrr']:7.3f}"
                )
    return "\n".join(lines)


def write_results(items: list[Scored], path: Path) -> None:
    """One line per question, in order: the ask --json object plus 'q'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps({"q": item.question.q, **item.answer}, ensure_ascii=False) + "\n")
