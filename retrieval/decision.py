"""The answer decision: answered, clarify, escalated or declined, from retrieval signals and thresholds."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from core.yamlfiles import load_yaml
from retrieval.normalize import DATA_DIR, fold
from retrieval.retriever import Candidate, SearchResult

THRESHOLDS_FILE = DATA_DIR / "thresholds.yaml"
ANSWERED, CLARIFY, ESCALATED, DECLINED = "answered", "clarify", "escalated", "declined"


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs on retrieval signals, calibrated per embedder by `motcua calibrate` on labelled questions."""

    answer_dense: float = 0.88  # best view's cosine needed to answer without asking
    answer_margin: float = 1.5  # lead of the first fused score over the second (standard deviations)
    domain_dense: float = 0.80  # below this, and with few known word pairs, a question is off-topic
    domain_known: float = 0.5  # share of the question's word pairs the knowledge base knows
    off_topic_gap: float = 0.0  # declined when the closest off-topic example beats the best view by this
    clarify_gap: float = -0.03  # offering candidates needs the best view this much closer than off-topic
    # Answering needs at most this share of the question's rare word pairs missing from the first candidate: among
    # thousands of procedures a long question that names things its card never mentions is about another one.
    answer_unexplained: float = 1.0

    def to_dict(self) -> dict[str, float]:
        """Plain data for the thresholds file."""
        return asdict(self)


# From this many procedures on, the knowledge base is in the "large" regime: thousands of look-alike
# national procedures need more certainty before answering than 43 distinct curated ones.
LARGE_KB = 500


def thresholds_key(embedder_name: str, n_procedures: int) -> str:
    """The thresholds-file key of an embedder at a knowledge-base size."""
    return f"{embedder_name}/large" if n_procedures >= LARGE_KB else embedder_name


def load_thresholds(embedder_name: str, path: Path = THRESHOLDS_FILE, *, n_procedures: int = 0) -> Thresholds:
    """The calibrated thresholds of an embedder (for the regime of n_procedures), or the defaults."""
    try:
        table = load_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError:
        table = {}
    values = table.get(thresholds_key(embedder_name, n_procedures)) or table.get(embedder_name) or {}
    return Thresholds(**{k: float(v) for k, v in values.items() if k in Thresholds.__dataclass_fields__})


def save_thresholds(embedder_name: str, thresholds: Thresholds, path: Path = THRESHOLDS_FILE) -> None:
    """Write one embedder's thresholds, keeping the others'."""
    try:
        table = load_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError:
        table = {}
    table[embedder_name] = {k: round(v, 4) for k, v in thresholds.to_dict().items()}
    header = (
        "# Written by `motcua calibrate`: decision thresholds per embedder, fitted on labelled questions.\n"
    )
    path.write_text(header + yaml.safe_dump(table, sort_keys=True), encoding="utf-8")


@lru_cache(maxsize=1)
def _human_patterns() -> re.Pattern[str]:
    data = load_yaml((DATA_DIR / "intents.yaml").read_text(encoding="utf-8"))
    phrases = sorted({fold(p) for p in data["human_request"]}, key=len, reverse=True)
    alternatives = [re.escape(p[:-1]) if p.endswith("*") else re.escape(p) + r"(?!\w)" for p in phrases]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + ")")


def asks_for_person(question: str) -> bool:
    """True when the citizen asks for a human official."""
    return bool(_human_patterns().search(fold(question)))


@lru_cache(maxsize=1)
def _qualifiers() -> dict[str, re.Pattern[str]]:
    data = load_yaml((DATA_DIR / "qualifiers.yaml").read_text(encoding="utf-8"))
    return {
        name: re.compile(r"(?<!\w)(?:" + "|".join(re.escape(fold(p)) for p in phrases) + r")(?!\w)")
        for name, phrases in data.items()
    }


def unmatched_case(question: str, titles: list[str]) -> str | None:
    """A case the question names (e.g. 'foreign') that none of these titles names; None when there is none."""
    asked, named = fold(question), fold(" ".join(titles))
    for name, pattern in _qualifiers().items():
        if pattern.search(asked) and not pattern.search(named):
            return name
    return None


# Words that tell one level or place of a procedure from another: "… (cấp tỉnh)", "… thực hiện tại cấp xã".
_LEVEL_WORDS = frozenset(
    {"cap", "tinh", "xa", "huyen", "trung", "uong", "bo", "thuc", "hien", "tai", "thanh", "pho", "quan", "phuong"}
)


def twin_titles(first: str, second: str, *, imported: bool = False) -> bool:
    """Whether two titles are one procedure at two levels or places: the same words once level words and what is in
    brackets are left out ("Xóa đăng ký thường trú" is another procedure than "Đăng ký thường trú"). Two imported
    records are twins already when they share most of their words: the national file's titles of one procedure's
    variants differ in more than level words, and its distinct procedures rarely come that close."""
    a, b = _title_core(first), _title_core(second)
    if not a or not b:
        return False
    return a == b or (imported and len(a & b) / len(a | b) >= TWIN_TITLES)


TWIN_TITLES = 0.75  # "Đăng ký khai sinh" and "Đăng ký khai tử" share 3 of 5 words and are not variants


def _title_core(title: str) -> frozenset[str]:
    words = re.findall(r"\w+", re.sub(r"\([^)]*\)", " ", fold(title)))
    return frozenset(w for w in words if w not in _LEVEL_WORDS)


@dataclass(frozen=True)
class Decision:
    """What to do with a question, and how many candidates to offer."""

    status: str
    offer: int = 0  # candidates to show as buttons (clarify) or 1 (answered)
    missing: str | None = None  # a case the question names that no candidate's title names (see unmatched_case)


@dataclass(frozen=True)
class Signals:
    """The few numbers of a search that the decision reads."""

    wants_person: bool
    has_words: bool
    dense: float  # cosine of the first candidate's best view
    margin: float  # lead of the first fused score over the second, in standard deviations
    known: float  # share of the question's word pairs the knowledge base knows
    off_topic_gap: float  # closest off-topic example's cosine minus the best procedure view's
    n_candidates: int
    unexplained: float = 0.0  # SearchResult.unexplained
    twins: bool = False  # the first two candidates are one procedure in two variants (twin_titles)
    case_of_first: str | None = None  # a case the question names and the first candidate's title does not
    case_of_all: str | None = None  # ... and no candidate's title does


def signals(question: str, result: SearchResult) -> Signals:
    """Extract the decision's inputs from a search."""
    words = [t for t in result.query_tokens if "_" not in t]
    cands = result.candidates
    first = cands[0] if cands else None
    second = cands[1] if len(cands) > 1 else None
    margin = first.score - second.score if first and second else 10.0
    return Signals(
        wants_person=asks_for_person(question),
        has_words=bool(words),
        dense=first.dense if first else 0.0,
        margin=margin,
        known=result.known_token_share,
        off_topic_gap=result.off_topic - (first.dense if first else 0.0),
        n_candidates=len(cands),
        unexplained=result.unexplained,
        # a curated card ahead of an imported record of the same title is the version written for citizens
        twins=bool(
            first
            and second
            and not (first.entry.curated and not second.entry.curated)
            and twin_titles(
                first.entry.title("vi"),
                second.entry.title("vi"),
                imported=not first.entry.curated and not second.entry.curated,
            )
        ),
        case_of_first=(case := unmatched_case(question, list(first.entry.titles.values())) if first else None),
        case_of_all=case if case and first and not _variant_naming(question, first, cands[1:5]) else None,
    )


def _variant_naming(question: str, first: Candidate, others: list[Candidate]) -> bool:
    """Whether one of the other candidates is the first one's procedure for the case the question names."""
    words = set(re.findall(r"\w+", fold(first.entry.title("vi"))))
    for other in others:
        title = other.entry.title("vi")
        shared = words & set(re.findall(r"\w+", fold(title)))
        if words and len(shared) / len(words) >= 0.5 and unmatched_case(question, [title]) is None:
            return True
    return False


def decide_signals(s: Signals, t: Thresholds) -> Decision:
    """Choose answered / clarify / escalated / declined from signals.

    Off-topic first; then a confident, clear winner is answered; a plausible in-domain question gets
    candidates to choose from; whatever is left is in-domain but unknown and goes to an official.
    """
    if s.wants_person:
        return Decision(ESCALATED)
    if not s.has_words or not s.n_candidates:
        return Decision(DECLINED)
    if s.off_topic_gap > t.off_topic_gap or (s.dense < t.domain_dense and s.known < t.domain_known):
        return Decision(DECLINED)
    if s.off_topic_gap > t.clarify_gap:
        return Decision(ESCALATED)
    sure = s.dense >= t.answer_dense and s.margin >= t.answer_margin and s.unexplained <= t.answer_unexplained
    if sure and not s.twins and not s.case_of_first:
        return Decision(ANSWERED, 1)
    return Decision(CLARIFY, min(3, s.n_candidates), missing=s.case_of_all)


def decide(question: str, result: SearchResult, thresholds: Thresholds) -> Decision:
    """Choose answered / clarify / escalated / declined for a searched question."""
    return decide_signals(signals(question, result), thresholds)
