"""Procedure cards as plain text, and splitting long messages at clean boundaries."""

from __future__ import annotations

from typing import Any

from bot.texts import CARD_LABELS, say, ui_lang

TELEGRAM_LIMIT = 4096
ZALO_LIMIT = 2000
MAX_LIST_ITEMS = 12  # a card lists at most this many documents or steps; the portal link has the rest


def render_card(card: dict[str, Any], lang: str) -> str:
    """A citizen-facing card: what, who, documents, fee, time, where, link, legal basis, code, date."""
    ui = ui_lang(lang)
    lines = [f"📄 {card['title']}"]
    if card.get("summary"):
        lines.append(card["summary"])
    for key in ("who", "documents", "fees", "processing_time", "where_to_file", "steps"):
        value = card.get(key)
        if not value:
            continue
        label = CARD_LABELS[key][ui]
        if isinstance(value, list):
            items = value[:MAX_LIST_ITEMS]
            more = ["…"] if len(value) > MAX_LIST_ITEMS else []
            lines.append("")
            lines.append(f"{label}:")
            lines += [f"• {item}" for item in items] + more
        else:
            lines.append("")
            lines.append(f"{label}: {value}")
    if card.get("online_link"):
        lines += ["", f"{CARD_LABELS['online_link'][ui]}: {card['online_link']}"]
    if card.get("legal_basis"):
        lines += ["", f"{CARD_LABELS['legal_basis'][ui]}: " + "; ".join(card["legal_basis"][:6])]
    footer = []
    if card.get("code"):
        footer.append(f"{CARD_LABELS['code'][ui]}: {card['code']}")
    if card.get("last_verified"):
        footer.append(f"{CARD_LABELS['last_verified'][ui]}: {card['last_verified']}")
    if footer:
        lines += ["", " · ".join(footer)]
    lines.append("ℹ️ " + say("card_check", lang))
    return "\n".join(lines)


def split_message(text: str, limit: int) -> list[str]:
    """Parts of at most limit characters, cut between paragraphs, else lines, else words."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for block in _pieces(text, limit):
        candidate = f"{current}\n{block}" if current else block
        if len(candidate) <= limit:
            current = candidate
        else:
            parts.append(current)
            current = block
    if current:
        parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


def _pieces(text: str, limit: int) -> list[str]:
    """Lines no longer than limit; an over-long line is cut between words (or hard, as a last resort)."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return out
