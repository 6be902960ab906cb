"""Vietnamese-aware text normalisation: NFC, case, diacritic folding, abbreviations, tokens, language."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from core.text import clean, fold  # noqa: F401 - clean is read from here by retrieval and bot
from core.yamlfiles import load_yaml

DATA_DIR = Path(__file__).resolve().parent / "data"

_WORD = re.compile(r"\w+", re.UNICODE)
_VI_LETTERS = set("ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ")
_PL_LETTERS = set("ąćęłńśźż")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
# Function words that tell unaccented Vietnamese, Polish and English apart when no accent does.
_VI_WORDS = {
        "toi",
        "em",
        "minh",
        "anh",
        "chi",
        "cho",
        "hoi",
        "lam",
        "thu",
        "tuc",
        "gi",
        "nao",
        "sao",
        "the",
        "khong",
        "duoc",
        "o",
        "dau",
        "bao",
        "nhieu",
        "lau",
        "can",
        "giay",
        "to",
        "xin",
        "cap",
        "dang",
        "ky",
        "nha",
        "con",
        "ve",
        "di",
        "voi",
        "cua",
        "va",
        "hay",
        "la",
        "roi",
        "thi",
        "muon",
        "phai",
        "nhu",
        "vay",
        "ho",
        "chieu",
        "ban",
        "sinh",
        "xa",
        "phuong",
        "co",
        "bi",
        "mat",
        "lai",
        "doi",
        "tre",
        "nguoi",
        "viec",
        "ngay",
        "thang",
        "nam",
        "tien",
        "phi",
        "le",
        "ai",
    }
_EN_WORDS = {
        "the",
        "a",
        "an",
        "how",
        "what",
        "where",
        "when",
        "do",
        "does",
        "did",
        "i",
        "my",
        "is",
        "are",
        "can",
        "to",
        "of",
        "for",
        "in",
        "on",
        "with",
        "get",
        "need",
        "we",
        "you",
        "your",
        "our",
        "which",
        "who",
        "long",
        "much",
        "it",
        "be",
        "have",
        "has",
        "should",
        "please",
        "want",
    }
_PL_WORDS = {
        "jak",
        "czy",
        "gdzie",
        "co",
        "w",
        "i",
        "na",
        "do",
        "sie",
        "się",
        "jest",
        "mam",
        "moge",
        "mogę",
        "potrzebuje",
        "dla",
        "z",
        "o",
        "ile",
    }


def has_diacritics(text: str) -> bool:
    """True when text carries Vietnamese letters beyond plain ASCII."""
    return any(c in _VI_LETTERS for c in text.lower())


@lru_cache(maxsize=1)
def abbreviations() -> dict[str, list[str]]:
    """Folded abbreviation -> folded expansion tokens, from data/abbreviations.yaml."""
    raw = load_yaml((DATA_DIR / "abbreviations.yaml").read_text(encoding="utf-8")) or {}
    return {fold(str(k)): fold(str(v)).split() for k, v in raw.items()}


def words(text: str) -> list[str]:
    """Folded word tokens with abbreviations expanded ('cccd' -> 'can cuoc cong dan')."""
    return list(_words(text))


# Folding is most of an index build's time (2.4 of 4 s at the national size); a rebuild after one published edit
# meets the same texts again, and so do repeated questions.
@lru_cache(maxsize=100_000)
def _words(text: str) -> tuple[str, ...]:
    table = abbreviations()
    out: list[str] = []
    for token in _WORD.findall(fold(text)):
        out.extend(table.get(token, (token,)))
    return tuple(out)


def tokens(text: str) -> list[str]:
    """Retrieval tokens: folded syllables plus adjacent-syllable bigrams.

    Vietnamese words are mostly two syllables ('can cuoc', 'khai sinh'), so bigrams carry the word
    sense that single syllables lose.
    """
    return list(_tokens(text))


@lru_cache(maxsize=100_000)  # see _words: an index rebuild meets the same documents again
def _tokens(text: str) -> tuple[str, ...]:
    ws = _words(text)
    return ws + tuple(f"{a}_{b}" for a, b in zip(ws, ws[1:], strict=False))


def detect_lang(text: str) -> str:
    """Best guess among vi, en, ko, ru, pl, zh, ja, th from the script and a few function words."""
    if _HANGUL.search(text):
        return "ko"
    if _KANA.search(text):
        return "ja"
    if _CJK.search(text):
        return "zh"
    if _CYRILLIC.search(text):
        return "ru"
    if _THAI.search(text):
        return "th"
    lower = text.lower()
    if any(c in _VI_LETTERS for c in lower):
        return "vi"
    if any(c in _PL_LETTERS for c in lower):
        return "pl"
    ws = _WORD.findall(lower)
    if not ws:
        return "vi"
    scores = {
        "vi": sum(w in _VI_WORDS for w in ws),
        "en": sum(w in _EN_WORDS for w in ws),
        "pl": sum(w in _PL_WORDS for w in ws),
    }
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] > 0 else "vi"
