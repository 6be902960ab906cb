"""Fitting the decision thresholds on labelled questions by coordinate ascent over a grid."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retrieval.decision import ANSWERED, CLARIFY, DECLINED, Signals, Thresholds, decide_signals, signals
from retrieval.evaluate import Question
from retrieval.service import AskService

# What each outcome is worth. A wrong confident answer costs four right ones: a citizen who files the
# wrong procedure loses a trip to the office, while a clarifying question costs one tap.
UTILITY = {
    "answered-right": 1.0,
    "answered-wrong": -4.0,
    "clarify-hit": 0.5,
    "clarify-miss": -0.25,
    "escalated": 0.0,
    "declined": -0.5,
    "off-answered": -2.0,
    "off-clarify": -1.0,
    "off-handled": 1.0,
}
GRID = {
    "answer_dense": np.round(np.arange(0.80, 0.965, 0.005), 3),
    "answer_margin": np.round(np.arange(0.0, 4.01, 0.25), 2),
    "domain_dense": np.round(np.arange(0.74, 0.905, 0.01), 2),
    "domain_known": (0.0, 0.2, 0.34, 0.5, 0.67, 0.8, 1.01),
    "off_topic_gap": np.round(np.arange(-0.05, 0.0501, 0.005), 3),
    "clarify_gap": np.round(np.arange(-0.08, 0.0201, 0.005), 3),
}
MIN_OFF_TOPIC_HANDLED = 0.9
ROUNDS = 6


@dataclass
class Labelled:
    """A labelled question with the signals and ranking its search produced."""

    question: Question
    signals: Signals
    hits: list[bool]  # per candidate: is it an expected procedure (by slug or national code)


def outcome(item: Labelled, thresholds: Thresholds) -> str:
    """Name the outcome of one labelled question under the thresholds."""
    decision = decide_signals(item.signals, thresholds)
    if item.question.expect is None and not item.question.expect_codes:
        if decision.status == ANSWERED:
            return "off-answered"
        return "off-clarify" if decision.status == CLARIFY else "off-handled"
    offered = item.hits[: max(decision.offer, 1)]
    if decision.status == ANSWERED:
        return "answered-right" if offered[0] else "answered-wrong"
    if decision.status == CLARIFY:
        return "clarify-hit" if any(offered) else "clarify-miss"
    return "declined" if decision.status == DECLINED else "escalated"


def label(
    service: AskService,
    questions: list[Question],
    *,
    regime: str = "curated",
    progress: Callable[[int], None] | None = None,
) -> list[Labelled]:
    """Search every labelled question once; keep those decided by the regime's thresholds.

    regime 'curated' keeps questions decided by the embedder's own thresholds (every question of a small
    knowledge base), 'large' those decided by the large-regime ones (best candidate an imported record).
    """
    items = []
    for done, question in enumerate((q for q in questions if q.labelled or q.expect_codes), 1):
        result = service.retriever.search(question.q)
        large = service.thresholds_for(result) is service.large_thresholds
        if large != (regime == "large"):
            continue
        hits = [
            c.entry.slug == question.expect
            or bool(question.expect_codes and c.entry.code in question.expect_codes)
            for c in result.candidates
        ]
        items.append(Labelled(question, signals(question.q, result), hits))
        if progress:
            progress(done)
    return items


def score(items: list[Labelled], thresholds: Thresholds, max_wrong: float) -> tuple[float, Counter[str]]:
    """Utility of the thresholds; settings that miss a target score below every one that meets it."""
    counts = Counter(outcome(item, thresholds) for item in items)
    n_in = sum(v for k, v in counts.items() if not k.startswith("off-")) or 1
    n_off = sum(v for k, v in counts.items() if k.startswith("off-"))
    utility = sum(UTILITY[k] * v for k, v in counts.items())
    wrong = counts["answered-wrong"] / n_in
    handled = counts["off-handled"] / n_off if n_off else 1.0
    penalty = 1000.0 * (max(0.0, wrong - max_wrong) + max(0.0, MIN_OFF_TOPIC_HANDLED - handled))
    return utility - penalty, counts


def fit(items: list[Labelled], *, max_wrong: float = 0.02) -> tuple[Thresholds, str]:
    """Thresholds of highest utility meeting the wrong-answer and off-topic targets."""
    current = Thresholds()
    for _ in range(ROUNDS):
        before = current
        for name, values in GRID.items():
            results = [
                score(items, dataclasses.replace(current, **{name: float(v)}), max_wrong)[0] for v in values
            ]
            best = max(results)
            # The middle of the best plateau, not its edge: a threshold with room on both sides
            # generalises better to phrasings the labelled set does not have.
            plateau = [v for v, r in zip(values, results, strict=True) if r == best]
            current = dataclasses.replace(current, **{name: float(plateau[len(plateau) // 2])})
        if current == before:
            break
    utility, counts = score(items, current, max_wrong)
    summary = f"utility {utility:.2f} over {len(items)} questions: {dict(sorted(counts.items()))}\n{current}"
    return current, summary
