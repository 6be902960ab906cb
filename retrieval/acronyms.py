"""Acronyms mined from the knowledge base itself: 'KDVCHK' -> 'kinh doanh van chuyen hang khong'.

Officials and citizens shorten long Vietnamese terms to the initials of their syllables. Any run of
2-7 syllables in a title or alias yields such an acronym; an unknown query word that equals one is
expanded to the run it stands for (the most frequent run, when several share initials).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from retrieval.normalize import words

MIN_LEN, MAX_LEN = 3, 7  # two-letter acronyms are too ambiguous to expand blindly


def mine(texts: Iterable[str]) -> dict[str, str]:
    """Acronym -> the syllable run it most often stands for in texts."""
    return _mine(tuple(texts))


@lru_cache(maxsize=4)  # an index rebuilt after an edit of a fee or a document meets the same titles and aliases
def _mine(texts: tuple[str, ...]) -> dict[str, str]:
    counts: Counter[tuple[str, str]] = Counter()
    for text in texts:
        ws = [w for w in words(text) if w.isalpha()]
        for n in range(MIN_LEN, MAX_LEN + 1):
            for start in range(len(ws) - n + 1):
                run = ws[start : start + n]
                counts["".join(w[0] for w in run), " ".join(run)] += 1
    best: dict[str, tuple[int, str]] = {}
    for (acronym, phrase), count in counts.items():
        if acronym not in best or count > best[acronym][0]:
            best[acronym] = (count, phrase)
    return {acronym: phrase for acronym, (_count, phrase) in best.items()}


def expand(question: str, table: dict[str, str], known: set[str]) -> list[str]:
    """The expansions of the question's unknown words that are mined acronyms."""
    found = []
    for word in words(question):
        if MIN_LEN <= len(word) <= MAX_LEN and word not in known and word in table:
            found.append(table[word])
    return found
