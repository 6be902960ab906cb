"""Procedure cards as blocks and plain text, their Telegram HTML, and splitting long messages at clean boundaries.

A reply's structure is a list of blocks, plain JSON so that it can be stored with the message and sent to
the web chat:

    {"type": "heading", "text": str}                  the procedure's title
    {"type": "paragraph", "text": str}                running text
    {"type": "field", "label": str, "text": str}      "Lệ phí: 70.000 đồng"
    {"type": "list", "label": str, "items": [str], "more": str}   a label line, bullets, "… and 3 more"
    {"type": "link", "label": str, "url": str}        "Nộp trực tuyến: https://…"
    {"type": "note", "text": str}                     the small print under a card

`label` may be empty and `more` absent. The plain text of blocks (chat log, Zalo, /api/chat `text`) and the
visible text of their Telegram HTML are the same characters, so a length measured on one holds for the other.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.texts import CARD_LABELS, say, ui_lang

TELEGRAM_LIMIT = 4096
ZALO_LIMIT = 2000
TELEGRAM_CALLBACK_LIMIT = 64  # bytes of a button's callback_data; a longer one makes Telegram refuse the message
MAX_LIST_ITEMS = 12  # a card lists at most this many documents or steps; the portal link has the rest
MAX_LEGAL_BASIS = 6
SHORT_DOCUMENTS = 3  # a short card names the first few documents; the full card has them all
SHORT_TEXT = 170  # a field of a short card is cut to about this many characters, at a sentence if it can
SHORT_ITEM = 100
SEPARATOR = "\n\n"
CLAUSE_END = re.compile(r"[.;](?= )|\n")  # "50.000 đồng" has no space after its dot

ASPECTS = ("fees", "documents", "processing_time", "where_to_file", "online_link", "who", "legal_basis", "steps")
PARTS = ("short", "full", *ASPECTS)
ALIASES = {"form": "documents"}  # a question about the application form is answered by the documents
LIST_FIELDS = ("documents", "steps", "legal_basis")

Block = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """A reply as plain text and as the blocks it was made of."""

    text: str
    blocks: list[Block]


def render_card(card: dict[str, Any], lang: str, part: str = "short") -> Rendered:
    """A citizen-facing card: short (the essentials), full, or one aspect of it ("fees", "steps"...)."""
    part = ALIASES.get(part, part)
    if part not in PARTS:
        raise ValueError(f"unknown card part {part!r}")
    ui = ui_lang(lang)
    if part == "short":
        blocks = _short(card, ui)
    elif part == "full":
        blocks = _full(card, ui)
    else:
        blocks = _aspect(card, ui, part)
    blocks.append({"type": "note", "text": "ℹ️ " + say("card_check", lang)})
    return Rendered(plain_text(blocks), blocks)


def has_part(card: dict[str, Any], part: str) -> bool:
    """Whether the card has something to show for an aspect."""
    return bool(_value(card, ALIASES.get(part, part)))


def _heading(card: dict[str, Any]) -> Block:
    return {"type": "heading", "text": f"📄 {card.get('title') or card.get('slug') or ''}".rstrip()}


def _value(card: dict[str, Any], key: str) -> Any:
    """A field's content, or None when it is missing, empty or only whitespace."""
    value = card.get(key)
    if isinstance(value, list):
        items = [str(i).strip() for i in value if str(i).strip()]
        return items or None
    return str(value).strip() if value and str(value).strip() else None


def _field(
    card: dict[str, Any], ui: str, key: str, limit: int | None = None, shown: int = MAX_LIST_ITEMS
) -> list[Block]:
    value = _value(card, key)
    if value is None:
        return []
    label = CARD_LABELS[key][ui]
    if key == "online_link":
        return [{"type": "link", "label": label, "url": value}]
    if isinstance(value, list):
        return [_list(label, value, ui, shown)]
    return [{"type": "field", "label": label, "text": brief(value, limit) if limit else value}]


def _list(label: str, items: list[str], ui: str, shown: int, item_limit: int | None = None) -> Block:
    shown_items = [brief(i, item_limit) if item_limit else i for i in items[:shown]]
    block: Block = {"type": "list", "label": label, "items": shown_items}
    if len(items) > shown:
        block["more"] = say("more_items", ui, n=len(items) - shown)
    return block


def _short(card: dict[str, Any], ui: str) -> list[Block]:
    """Title, who, the first documents, fee, time, where, link: what most questions need, on one screen."""
    blocks = [_heading(card), *_field(card, ui, "who", SHORT_TEXT)]
    documents = _value(card, "documents")
    if documents:
        blocks.append(_list(CARD_LABELS["documents"][ui], documents, ui, SHORT_DOCUMENTS, SHORT_ITEM))
    for key in ("fees", "processing_time", "where_to_file", "online_link"):
        blocks += _field(card, ui, key, SHORT_TEXT)
    return blocks


def _full(card: dict[str, Any], ui: str) -> list[Block]:
    """Everything the card has, in the order a citizen goes through it."""
    blocks = [_heading(card)]
    if _value(card, "summary"):
        blocks.append({"type": "paragraph", "text": _value(card, "summary")})
    for key in ("who", "conditions", "documents", "fees", "processing_time", "where_to_file", "steps", "result"):
        blocks += _field(card, ui, key)
    blocks += _field(card, ui, "online_link") + _field(card, ui, "legal_basis", shown=MAX_LEGAL_BASIS)
    footer = [f"{CARD_LABELS[key][ui]}: {card[key]}" for key in ("code", "last_verified") if _value(card, key)]
    if footer:
        blocks.append({"type": "paragraph", "text": " · ".join(footer)})
    return blocks


def _aspect(card: dict[str, Any], ui: str, key: str) -> list[Block]:
    """The title and one field in full; a polite word when the card lacks it."""
    blocks = _field(card, ui, key)
    if not blocks:
        blocks = [{"type": "paragraph", "text": say("part_missing", ui, label=CARD_LABELS[key][ui])}]
    return [_heading(card), *blocks]


def brief(text: str, limit: int | None) -> str:
    """The text cut to about limit characters: after a sentence or clause if one ends late enough, else a word."""
    text = text.strip()
    if limit is None or len(text) <= limit:
        return text
    head = text[:limit]
    # The last sentence or clause end outside brackets: "(mẫu TK01; …" would leave a bracket open.
    ends = [m.start() for m in CLAUSE_END.finditer(head) if _closed(head[: m.start()])]
    if ends and ends[-1] >= limit // 3:
        return head[: ends[-1] + 1].rstrip(" ;\n") + " …"
    word = head.rfind(" ")
    if word >= limit // 2:
        head = head[:word]
    return head.rstrip(" ,;:") + "…"


def _closed(text: str) -> bool:
    return text.count("(") <= text.count(")")


# -- plain text and Telegram HTML --------------------------------------------------------------------


def block_text(block: Block) -> str:
    """One block as plain text."""
    return _render(block, str, _same, _same)


def _same(text: str) -> str:
    return text


def _render(
    block: Block, esc: Callable[[object], str], bold: Callable[[str], str], italic: Callable[[str], str]
) -> str:
    """One block with the channel's escaping and emphasis: the plain text and Telegram's HTML share this layout."""
    kind = block.get("type")
    label = str(block.get("label") or "")
    head = bold(f"{esc(label)}:") if label else ""
    if kind == "heading":
        return bold(esc(block.get("text", "")))
    if kind == "note":
        return italic(esc(block.get("text", "")))
    if kind in ("field", "link"):
        value = esc(block.get("text" if kind == "field" else "url", ""))
        return f"{head} {value}" if head else value
    if kind == "list":
        lines = [head] if head else []
        lines += [f"• {esc(item)}" for item in block.get("items", [])]
        if block.get("more"):
            lines.append(esc(block["more"]))
        return "\n".join(lines)
    return esc(block.get("text", ""))


def plain_text(blocks: list[Block]) -> str:
    """Blocks as the plain text stored in the chat log and sent where there is no formatting."""
    return SEPARATOR.join(block_text(b) for b in blocks)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def block_html(block: Block) -> str:
    """One block in Telegram's HTML: bold headings and labels, the small print in italics, every value escaped."""
    return _render(block, _esc, lambda text: f"<b>{text}</b>", lambda text: f"<i>{text}</i>")


def telegram_html(blocks: list[Block]) -> str:
    """Blocks as one Telegram message with parse_mode HTML; its visible text is plain_text(blocks)."""
    return SEPARATOR.join(block_html(b) for b in blocks)


# -- splitting ----------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the way Telegram counts (an emoji beyond the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """The largest index i such that text[:i] has at most limit UTF-16 units."""
    if len(text) * 2 <= limit or utf16_len(text) <= limit:
        return len(text)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _cut(text: str, limit: int, first: int | None = None) -> list[str]:
    """Pieces of at most limit UTF-16 units (the first at most `first`), cut between words where one is near."""
    pieces: list[str] = []
    room = max(first if first is not None else limit, 2)
    while utf16_len(text) > room:
        end = max(_prefix_within(text, room), 1)
        cut = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end))
        cut = cut if cut > end // 2 else end
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" \n")
        room = max(limit, 2)
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def _fit(block: Block, limit: int) -> list[Block]:
    """The block as pieces that each fit one message; a piece never leaves a label or bullet half sent."""
    if utf16_len(block_text(block)) <= limit:
        return [block]
    kind = block.get("type")
    if kind in ("heading", "paragraph", "note"):
        return [{"type": kind, "text": piece} for piece in _cut(str(block.get("text", "")), limit)]
    label = str(block.get("label") or "")
    if kind == "field" and utf16_len(label) < limit // 2:
        pieces = _cut(str(block.get("text", "")), limit, first=limit - utf16_len(label) - 2)
        head = [{"type": "field", "label": label, "text": pieces[0] if pieces else ""}]
        return head + [{"type": "paragraph", "text": piece} for piece in pieces[1:]]
    if kind == "list":
        return _fit_list(block, limit)
    return [{"type": "paragraph", "text": piece} for piece in _cut(block_text(block), limit)]


def _fit_list(block: Block, limit: int) -> list[Block]:
    """A long list as several lists (the label on the first); an item too long for a message goes as paragraphs."""
    label = str(block.get("label") or "")
    out: list[Block] = []
    current: Block = {"type": "list", "label": label, "items": []}

    def flush() -> None:
        nonlocal current
        if current["items"] or current["label"]:
            out.append(current)
        current = {"type": "list", "label": "", "items": []}

    if utf16_len(label) + 1 > limit // 2:  # no real label is this long; keep it whole as text
        out += [{"type": "paragraph", "text": piece} for piece in _cut(label + ":", limit)]
        current["label"] = ""
    for item in [str(i) for i in block.get("items", [])]:
        if utf16_len(f"• {item}") > limit:
            flush()
            first, *rest = _cut(item, limit, first=limit - 2) or [""]
            out.append({"type": "list", "label": "", "items": [first]})
            out += [{"type": "paragraph", "text": piece} for piece in rest]
            continue
        if utf16_len(block_text({**current, "items": [*current["items"], item]})) > limit:
            flush()
        current["items"].append(item)
    more = str(block.get("more") or "")
    if more:
        if utf16_len(block_text({**current, "more": more})) > limit:
            flush()
        if utf16_len(more) > limit:
            out += [{"type": "paragraph", "text": piece} for piece in _cut(more, limit)]
        else:
            current["more"] = more
    if current["items"] or current["label"] or current.get("more"):
        out.append(current)
    return out


def split_blocks(blocks: list[Block], limit: int) -> list[list[Block]]:
    """Blocks in messages of at most limit UTF-16 units of visible text, cut only between blocks."""
    parts: list[list[Block]] = []
    current: list[Block] = []
    size = 0
    for piece in (p for b in blocks for p in _fit(b, limit)):
        length = utf16_len(block_text(piece))
        if current and size + len(SEPARATOR) + length > limit:
            parts.append(current)
            current, size = [], 0
        size += length + (len(SEPARATOR) if current else 0)
        current.append(piece)
    if current:
        parts.append(current)
    return [p for p in parts if plain_text(p).strip()]


def split_message(text: str, limit: int) -> list[str]:
    """Parts of at most limit UTF-16 units, cut between paragraphs, else lines, else words."""
    if utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for block in _pieces(text, limit):
        candidate = f"{current}\n{block}" if current else block
        if utf16_len(candidate) <= limit:
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
        while utf16_len(line) > limit:
            end = _prefix_within(line, limit)
            cut = line.rfind(" ", 0, end)
            cut = cut if cut > end // 2 else end
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return out
