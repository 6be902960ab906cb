"""Fitting the decision thresholds on labelled questions by a small grid search."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retrieval.decision import ANSWERED, CLARIFY, DECLINED, Signals, Thresholds, decide_signals, signals
from retrieval.evaluate import Question
from retrieval.service import AskService

# What each outcome is worth. A wrong confident answer costs four right ones: a citizen who files the
# wrong procedure loses a trip to the office, while a clarifying question costs one tap.
UTILITY = {
    ("in", "answered-right"): 1.0,
    ("in", "answered-wrong"): -4.0,
    ("in", "clarify-hit"): 0.5,
    ("in", "clarify-miss"): -0.25,
    ("in", "escalated"): 0.0,
    ("in", "declined"): -0.5,
    ("off", "answered"): -2.0,
    ("off", "clarify"): -1.0,
    ("off", "handled"): 1.0,
}
GRID = {
    "answer_dense": np.arange(0.80, 0.95, 0.01),
    "answer_margin": np.arange(0.0, 0.31, 0.03),
    "domain_dense": np.arange(0.74, 0.88, 0.01),
    "domain_known": (0.5, 0.67, 0.8, 1.01),
    "clarify_dense": np.arange(0.76, 0.90, 0.02),
}
MIN_OFF_TOPIC_HANDLED = 0.9


@dataclass
class _Labelled:
    question: Question
    signals: Signals
    slugs: list[str]


def _outcome(item: _Labelled, thresholds: Thresholds) -> tuple[str, str]:
    decision = decide_signals(item.signals, thresholds)
    if item.question.expect is None:
        if decision.status == ANSWERED:
            return "off", "answered"
        return ("off", "clarify") if decision.status == CLARIFY else ("off", "handled")
    top = item.slugs[: max(decision.offer, 1)]
    if decision.status == ANSWERED:
        return "in", "answered-right" if top[0] == item.question.expect else "answered-wrong"
    if decision.status == CLARIFY:
        return "in", "clarify-hit" if item.question.expect in top else "clarify-miss"
    return "in", "declined" if decision.status == DECLINED else "escalated"


def fit(
    service: AskService,
    questions: list[Question],
    *,
    max_wrong: float = 0.02,
    progress: Callable[[int], None] | None = None,
) -> tuple[Thresholds, str]:
    """The thresholds of highest utility whose wrong-answer and off-topic rates meet the targets."""
    labelled = [q for q in questions if q.labelled]
    items = []
    for done, question in enumerate(labelled, 1):
        result = service.retriever.search(question.q)
        items.append(_Labelled(question, signals(question.q, result), [c.entry.slug for c in result.candidates]))
        if progress:
            progress(done)
    n_in = sum(1 for i in items if i.question.expect is not None)
    n_off = len(items) - n_in
    best: tuple[float, Thresholds, dict[str, int]] | None = None
    for values in itertools.product(*GRID.values()):
        thresholds = Thresholds(**{k: float(v) for k, v in zip(GRID, values, strict=True)})
        if thresholds.clarify_dense > thresholds.answer_dense:
            continue
        counts: dict[str, int] = {}
        for item in items:
            key = _outcome(item, thresholds)
            counts[key[1]] = counts.get(key[1], 0) + 1
        wrong = counts.get("answered-wrong", 0) / n_in if n_in else 0.0
        handled = counts.get("handled", 0) / n_off if n_off else 1.0
        if wrong > max_wrong or handled < MIN_OFF_TOPIC_HANDLED:
            continue
        utility = sum(UTILITY[("off" if k in ("answered", "clarify", "handled") else "in", k)] * v
                      for k, v in counts.items())
        # On ties keep the stricter setting: it generalises better to phrasings we have not seen.
        rank = (utility, thresholds.answer_dense + thresholds.answer_margin)
        if best is None or rank > (best[0], best[1].answer_dense + best[1].answer_margin):
            best = (utility, thresholds, counts)
    if best is None:
        return Thresholds(), "no setting meets the targets; keeping the defaults"
    utility, thresholds, counts = best
    summary = f"best utility {utility:.2f} over {len(items)} questions: {counts}\n{thresholds}"
    return thresholds, summary
