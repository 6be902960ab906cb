"""Text folding every package shares: NFC, no invisible characters, and Vietnamese without diacritics."""

from __future__ import annotations

import re
import unicodedata

# Characters that carry no meaning but break matching: zero-width spaces/joiners, BOM, bidi controls.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    """NFC, no invisible characters, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Lower-case and strip diacritics, mapping đ to d: 'Đăng ký' -> 'dang ky'."""
    text = clean(text).lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
