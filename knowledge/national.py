"""Parse records of the national database of administrative procedures.

The crawl of dichvucong.gov.vn flattened every table cell into one string with no
separators ("Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến7 Ngày làm việc10,000 Việt
Nam Đồng..."), so the column boundaries have to be recovered from the shapes of the
values themselves.  Everything here is heuristic: when a field cannot be split, the
parser keeps the trimmed raw text (or returns an empty list) instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from knowledge.io import iter_jsonl

# The 2,642 procedures of the national database, as crawled from the portal, shipped with the package.
BUNDLED_NATIONAL_FILE = Path(__file__).resolve().parent / "data" / "national_procedures.jsonl.gz"

# Values the portal prints when a cell is empty.
_NO_INFO = {
    "",
    "không",
    "không.",
    "không có",
    "không có.",
    "không có thông tin",
    "không có thông tin.",
    "không quy định",
    "không quy định.",
}

_MODE_NAMES = ("Trực tiếp", "Trực tuyến", "Dịch vụ bưu chính")
_MODE = "|".join(_MODE_NAMES)
_CURRENCY = r"(?:Việt Nam Đồng|VNĐ|VND|Đồng|đồng|USD|EUR)"
_UNIT = r"(?:Ngày làm việc|Ngày|Giờ làm việc|Giờ|Tháng|Năm|Tuần|Phút)"

# One row of the "Cách thức thực hiện" table: mode, time, fee; the free-text
# description runs until the next row.  The fee is the anchor that tells a real row
# from a mode name that merely occurs inside a description.
_FILING_ROW = re.compile(
    rf"(?P<mode>{_MODE})"
    r"(?P<time>"
    rf"\d+(?:[.,]\d+)? ?{_UNIT}"
    r"|Không có thông tin"
    # A unit-less one-digit time glued to an amount ("Trực tuyến120 VNĐ" is time 1,
    # fee 20 VNĐ): every glued case in the data has a one-digit time.
    rf"|\d(?=[\d.,]* ?{_CURRENCY})"
    r"|\d+"
    # Free-text times ("Không phải trả kết quả cho người nộp thuế").
    r"|[A-ZĐ][^:()\n]{0,150}?"
    r"|)"
    rf"(?P<fee>Miễn phí|Không có thông tin|\d[\d.,]* ?{_CURRENCY})"
)
_FILING_HEADER = "Hình thức nộpThời gianPhí, lệ phíMô tả"
_BARE_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d,])")

_DOC_HEADER = "Tên giấy tờMẫu đơn, tờ khaiSố lượng"
# The "Số lượng" cell ("1 bản chính,1 bản sao") ends every document row.  It is glued
# to the row's text, so a count preceded by a space or "(" (or "0" after one, as in
# "(01 bản chính hoặc ...") is prose inside a document name, not a cell.
_DOC_COUNT = re.compile(r"(?<![\s(])(?<![\s(]0)\d bản chính(?:\s*,\s*\d+ bản sao)?")
_FORM_FILE = re.compile(r"\.(?:docx|doc|pdf|xlsx|xls|odt|rtf|rar|zip)", re.IGNORECASE)
_FORM_FILE_END = re.compile(rf"{_FORM_FILE.pattern}$", re.IGNORECASE)
# Lower-case or numbered starts of form file names, recognisable only by their words.
_FORM_FILE_START = re.compile(
    r"(?:mẫu|mau|báo cáo|văn bản|tờ trình|bản khai|đơn đề nghị|\d+[-.])", re.IGNORECASE
)
# How far back from ".docx" a form file name may start; names that open with a
# typical form word may be longer.
_FORM_FILE_WINDOW = 100
_FORM_FILE_LONG_WINDOW = 170
_FORM_FILE_TITLE = re.compile(r"(?:Mẫu|MẪU|Mau|MAU|Phụ lục|PHỤ LỤC|Phu luc|PL)\b")
_LIST_MARKER = re.compile(r"^(?:[-+•*–_.)]+|\(?\d{1,2}(?:\.\d{1,2})*[.)]|\(?[a-zđ][.)]|\(?[ivx]{1,5}[.)])\s*")

_PROSE_COUNT = re.compile(r"(?:[\s:;,.\-]*\(?\d+ bản (?:chính|sao)\)?)+[.;]?$")
_COPY_KIND = re.compile(r"^(?:Bản chính|Bản sao)(?: hoặc bản (?:chính|sao))?\s*:\s*", re.IGNORECASE)

_LEGAL_HEADER = "Tên văn bản pháp lýMã văn bản"
_DOC_TYPE = (
    r"(?:Bộ luật|Luật|Nghị định|Thông tư liên tịch|Thông tư|Nghị quyết|Quyết định"
    r"|Pháp lệnh|Chỉ thị|Văn bản hợp nhất|Lệnh)"
)
# Issuer parts of a document number ("NĐ-CP", "TT-BTC", "QH15").  Listing them lets
# the parser stop at the right letter when the next cell is glued on: "TT-BTCThông
# tư" and "TT-NHNNsố 12" cannot be split by letter case alone.
_ISSUER_WORDS = (
    "NĐ CP TT TTLT NQ QĐ PL CT TTg VBHN QH NQLT BTC BTP BCA BXD BGTVT BNNMT BNNPTNT BNN BTNMT NHNN BKHĐT"
    " BLĐTBXH BYT BCT BNV BQP BNG BTTTT BVHTTDL BGDĐT BKHCN BDT VPCP UBND HĐND UBTVQH TANDTC VKSNDTC"
    " HĐTP KTNN BHXH TCHQ TCT UBCKNN UBDT CSXH NHTW TTCP"
)
# Longest first, so "BNNPTNT" wins over "BNN" and "TTLT" over "TT".
_ISSUER_PARTS = sorted(_ISSUER_WORDS.split(), key=len, reverse=True)
# Unknown issuers are accepted only when nothing is glued after them.
_ISSUER_PART = r"(?:(?:UBTVQH|QH)\d{2}|" + "|".join(_ISSUER_PARTS) + r"|[A-ZĐƯƠÂÊÔĂ]{2,}(?![^\W\d_]))"
_LEGAL_NUMBER = re.compile(
    rf"(?P<prefix>{_DOC_TYPE}(?: số)?\s*)?"
    r"(?:"
    # "60/2014/QH13", "21/2008/TTLT- BQP-BLĐTBXH-BTC", "2338/QĐ-BTP", "30a/2008/NQ-CP"
    r"(?P<num>\d+[a-z]?(?:\.\d+)?)(?P<year>/(?:19|20)\d{2})?"
    rf"(?P<issuer>[/_]{_ISSUER_PART}(?:\s?[-/_]\s?{_ISSUER_PART})*)"
    # A code cell holding only "42/2020", glued to the next title or ending the text.
    r"|(?<![/\d])(?P<bare>\d{1,4}/(?:19|20)\d{2})(?=[A-ZĐ]|$)"
    r")"
)
_TITLE_CONTINUES = re.compile(r"(?:ngày|của|về|và|được|sửa đổi)\b")
_STARTS_WITH_DOC_TYPE = re.compile(rf"^{_DOC_TYPE}\b", re.IGNORECASE)

# Glued markers ("...xử lýBước 10 Duyệt hồ sơ") are real, so no look-behind; the
# caller checks what follows to skip cross-references like "theo Bước 2 nêu trên".
_STEP_MARKER = re.compile(r"Bước\s*\d+\s*(?P<punct>[:.)\-]?)\s*")
_TRAILING_MARKER = re.compile(r"(?:^|\s+)(?:\(?[a-zđ]\)|\d{1,2}[.)]|[-+*•])$")
_STEP_BULLET = re.compile(r"^[-+•*–]+\s*")

_THREE_LETTERS = re.compile(r"[^\W\d_](?:[\W\d_]*[^\W\d_]){2}")

# Portal chrome that follows the last detail field on the page.
_PAGE_CHROME = re.compile(r"Từ khóa.*?Mô tả(?P<desc>.*?)(?:Chọn cơ quan thực hiện.*)?$", re.S)
_RESULT_CODE = re.compile(r"\s*Mã\s*:\s*(?:Chưa xác định(?: rõ)?|[A-Za-z0-9][\w.\-]*\d)\s*")


def _text(value: Any) -> str:
    """Return value as a string, "" for None and other non-strings."""
    return value if isinstance(value, str) else ""


def _clean(value: Any) -> str:
    """Collapse all whitespace (newlines, tabs, nbsp) into single spaces."""
    return " ".join(_text(value).split())


def _clean_block(value: Any) -> str:
    """Trim a multi-line text, collapsing spaces within lines and dropping blank lines."""
    lines = (" ".join(line.split()) for line in _text(value).splitlines())
    return "\n".join(line for line in lines if line)


def _has_words(value: str) -> bool:
    """True when value holds at least three letters (not just a marker or a number)."""
    return _THREE_LETTERS.search(value) is not None


def _is_no_info(value: str) -> bool:
    """True when a cell holds one of the portal's "nothing here" placeholders."""
    return " ".join(value.split()).casefold() in _NO_INFO


def _value(value: Any) -> str:
    """Whitespace-normalised cell, "" for the portal's empty placeholders."""
    cleaned = _clean(value)
    return "" if _is_no_info(cleaned) else cleaned


def _strip_page_chrome(value: str) -> tuple[str, str]:
    """Split off the "Từ khóa…Mô tả…Chọn cơ quan…" page tail; return (body, description)."""
    start = value.find("Từ khóa")
    match = _PAGE_CHROME.match(value, start) if start >= 0 else None
    if match is None:
        return value, ""
    description = match.group("desc")
    return value[:start], "" if _is_no_info(description) else _clean_block(description)


# --- ways of filing: mode, time, fee ---------------------------------------------


def _balanced_note(text: str, start: int, end: int) -> int:
    """Return the index just past the parenthesised note opening at text[start]."""
    depth = 0
    for index in range(start, end):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    # Unbalanced: the crawl cut the note, so it runs to the end of the row.
    return end


def _format_amount(amount: str) -> str:
    """Render "10,000 Việt Nam Đồng" / "850 VNĐ" as "10.000 đồng" / "850 đồng"."""
    match = re.match(rf"(?P<num>\d[\d.,]*) ?(?P<cur>{_CURRENCY})$", amount)
    if not match:
        return amount
    number = match.group("num")
    if _THOUSANDS.fullmatch(number):
        number = number.replace(",", ".")
    currency = match.group("cur")
    unit = currency if currency in ("USD", "EUR") else "đồng"
    return f"{number} {unit}"


def _fee_text(fee: str, note: str) -> str:
    """Combine the fee cell and its parenthesised note into one readable string."""
    base = "" if _is_no_info(fee) else _format_amount(fee)
    # "((áp dụng mức phí ...))": the crawl doubles some brackets.
    while note.startswith("(") and _balanced_note(note, 0, len(note)) == len(note) and note.endswith(")"):
        note = note[1:-1].strip()
    note = "" if _is_no_info(note) else _clean(note)
    if base and note:
        return f"{base} ({note})"
    return base or note


def _parse_filing_modes(value: Any) -> list[dict[str, str]]:
    """Split the flattened "Cách thức thực hiện" table into one dict per row."""
    text = _text(value)
    rows = list(_FILING_ROW.finditer(text))
    modes: list[dict[str, str]] = []
    for index, row in enumerate(rows):
        row_end = rows[index + 1].start() if index + 1 < len(rows) else len(text)
        rest = row.end()
        note = ""
        # An empty fee cell has no note: a "(1) ..." after it numbers the description.
        if rest < row_end and text[rest] == "(" and not _is_no_info(row.group("fee")):
            note_end = _balanced_note(text, rest, row_end)
            note, rest = text[rest:note_end], note_end
        time = _clean(row.group("time"))
        modes.append(
            {
                "mode": row.group("mode"),
                "time": "" if _is_no_info(time) else time,
                "fee": _fee_text(row.group("fee"), note),
                "description": _clean_block(text[rest:row_end]),
            }
        )
    rest = _clean_block(text.replace(_FILING_HEADER, "", 1))
    if not modes and not _is_no_info(rest):
        # No row could be recognised: keep the text rather than lose it.
        modes.append({"mode": "", "time": "", "fee": "", "description": rest})
    return modes


def _same(value: str) -> str:
    """Identity renderer for columns already in human form."""
    return value


def _human_time(time: str) -> str:
    """Lower-case the unit ("7 Ngày làm việc" -> "7 ngày làm việc"); flag bare numbers."""
    if _BARE_NUMBER.fullmatch(time):
        # The portal dropped the unit for these (it can be hours, days or months).
        return f"{time} (không rõ đơn vị)"
    match = re.fullmatch(rf"(\d+(?:[.,]\d+)?) ?({_UNIT})", time)
    return f"{match.group(1)} {match.group(2).lower()}" if match else time


def _summarise(modes: list[dict[str, str]], key: str, render: Callable[[str], str]) -> str:
    """Summarise one column per mode, collapsing to one value when all modes agree."""
    order: list[str] = []
    per_mode: dict[str, set[str]] = {}
    for mode in modes:
        values = per_mode.setdefault(mode["mode"], set())
        if mode[key]:
            rendered = render(mode[key])
            values.add(rendered)
            if rendered not in order:
                order.append(rendered)
    # Record order, not row order, so modes listing the same values in another
    # order still collapse into one.
    joined = {mode: " / ".join(sorted(values, key=order.index)) for mode, values in per_mode.items()}
    distinct = set(joined.values())
    if not distinct or distinct == {""}:
        return ""
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(f"{mode}: {value}" for mode, value in joined.items() if value)


# --- documents ---------------------------------------------------------------------


def _is_file_boundary(text: str, index: int) -> bool:
    """True when a form file name can start at text[index] (glued to the text before)."""
    before, here = text[index - 1], text[index]
    if before.isspace() or here.isspace():
        return False
    after = text[index + 1] if index + 1 < len(text) else ""
    if here == "~" or (before.isalpha() and _FORM_FILE_START.match(text, index)):
        # "~$..." Office lock files, "...hạnmau so 20.doc", "...nuôi08.pdf"
        return True
    if before == ";":
        return here.isalnum()
    if before in ",:\"”'":
        return here.isalpha() or bool(_FORM_FILE_START.match(text, index))
    if before == ")":
        return here.isalnum()
    if before == ".":
        # "số 05.QLT" and "Mẫu số 02.TĂCN" are form numbers, not a glued file name.
        if index >= 2 and text[index - 2].isdigit():
            return bool(_FORM_FILE_TITLE.match(text, index))
        return here.isalnum()
    if before.islower() and here.isupper():
        return True
    # "NĐ-CPMẫu", "BNNPTNTPhụ lục", "05Phụ lục": a capitalised word glued to an
    # acronym or a number.
    return (before.isupper() or before.isdigit()) and here.isupper() and after.islower()


def _strip_form_files(name: str) -> str:
    """Remove the form file names ("Mẫu số 01.docx") glued to the end of a document name."""
    while True:
        match = _FORM_FILE_END.search(name)
        if not match:
            return name
        stem_end = match.start()
        long_start = max(1, stem_end - _FORM_FILE_LONG_WINDOW)
        previous_files = list(_FORM_FILE.finditer(name, long_start, stem_end))
        if previous_files:
            # Several forms in one cell: this one starts where the previous ends.
            name = name[: previous_files[-1].end()]
            continue
        short_start = max(1, stem_end - _FORM_FILE_WINDOW)
        start = next(
            (
                i
                for i in range(long_start, stem_end)
                if _is_file_boundary(name, i) and (i >= short_start or _FORM_FILE_TITLE.match(name, i))
            ),
            None,
        )
        if start is None:
            # No glue point: the file name is at least its last word.
            start = name.rstrip().rfind(" ", 0, stem_end) + 1
        name = name[:start]


def _clean_document_name(segment: str) -> str:
    """Turn one row of the documents table into a bare document name ("" if none)."""
    name = _strip_form_files(segment.strip())
    name = _clean(name)
    previous = None
    while previous != name:
        previous = name
        name = _LIST_MARKER.sub("", name).strip()
    # Counts written into the name itself ("...nhập khẩu: 01 bản chính").
    name = _PROSE_COUNT.sub("", name).rstrip(" ;,:.-+")
    name = _COPY_KIND.sub("", name)
    if name.startswith("Số lượng hồ sơ") or _is_no_info(name):
        # A note about the number of dossiers, or an empty placeholder row.
        return ""
    # Lone numbers or markers left by counts written in prose are not documents.
    return name if _has_words(name) else ""


def _parse_documents(value: Any) -> list[str]:
    """Extract document names from the flattened "Thành phần hồ sơ" tables."""
    text = _text(value)
    if _DOC_HEADER not in text:
        return []
    documents: list[str] = []
    seen: set[str] = set()
    position = 0
    segments: list[str] = []
    for count in _DOC_COUNT.finditer(text):
        segments.append(text[position : count.start()])
        position = count.end()
    # A last row whose count cell is missing still names a document.
    segments.append(text[position:])
    for segment in segments:
        if _DOC_HEADER in segment:
            # Whatever precedes a table header is a group heading, not a document.
            segment = segment.rsplit(_DOC_HEADER, 1)[1]
        name = _clean_document_name(segment)
        key = name.casefold()
        if name and key not in seen:
            seen.add(key)
            documents.append(name)
    return documents


# --- legal basis -------------------------------------------------------------------


def _number_span(match: re.Match[str]) -> tuple[int, int]:
    """Span of the number itself, skipping a year glued before it ("năm 2020" + "59/2020/QH14")."""
    if match.group("bare"):
        return match.span("bare")
    start = match.start("num")
    glued = re.fullmatch(r"(?:19|20)\d{2}\.?(\d{1,4}[a-z]?(?:\.\d+)?)", match.group("num"))
    if glued and match.group("year") and not match.group("prefix"):
        start += glued.start(1)
    return start, match.end()


def _is_legal_number(match: re.Match[str]) -> bool:
    """Reject "Mẫu 01/LP"-like references: a number without a year needs a joint issuer."""
    return bool(match.group("bare") or match.group("year") or "-" in match.group("issuer"))


def _is_code_cell(text: str, match: re.Match[str]) -> bool:
    """True when a document number is the "Mã văn bản" cell that ends a row."""
    end = match.end()
    if not text[end:].strip(" ;,.:)]"):
        return True
    following = text[end]
    if not following.isspace():
        # The next row's title is glued on; punctuation or a sentence carrying on
        # ("53/2025/TT-BCAngày 01/7/2025...") means the number is quoted in a title.
        return following not in ",;.:)]" and not _TITLE_CONTINUES.match(text, end)
    # A number followed by a space ends a row only if the number itself was glued to
    # the title before it ("...ngân hàng.24/2026/NQ-CP Hướng dẫn..."); "Nghị định số
    # 91/2022/NĐ-CP sửa đổi..." opens the next title instead.
    if match.group("prefix"):
        return False
    start = _number_span(match)[0]
    return start > 0 and not text[start - 1].isspace() and text[start - 1] not in "(/"


def _format_legal(title: str, code: str, prefix: str) -> str:
    """Render one legal document as "title number" without repeating the number."""
    title = title.strip(" ;,.:-")
    if not title:
        return f"{prefix}{code}".strip()
    if code in title:
        return title
    if prefix and not _STARTS_WITH_DOC_TYPE.match(title):
        return f"{prefix}{code} {title}"
    return f"{title} {code}"


def _parse_legal_basis(value: Any) -> list[str]:
    """Split the flattened "Căn cứ pháp lý" table into "title number" strings."""
    text = _text(value)
    if _LEGAL_HEADER in text:
        text = text.split(_LEGAL_HEADER, 1)[1]
    text = text.split("Cơ quan thực hiện", 1)[0]
    if _is_no_info(text):
        return []
    entries: dict[str, str] = {}
    untitled: set[str] = set()
    position = 0
    for match in _LEGAL_NUMBER.finditer(text):
        if not _is_legal_number(match) or not _is_code_cell(text, match):
            continue
        number_start, number_end = _number_span(match)
        code = "".join(text[number_start:number_end].split())
        prefix = _clean(match.group("prefix") or "")
        title_end = match.start() if prefix else number_start
        title = _clean(text[position:title_end])
        position = number_end
        if not title and any(code in entry for entry in entries.values()):
            # A code cell repeating the number its title already gave.
            continue
        if code not in entries or (code in untitled and title):
            entries[code] = _format_legal(title, code, f"{prefix} " if prefix else "")
            untitled.discard(code)
            if not title:
                untitled.add(code)
    tail = _clean(text[position:]).strip(" ;,.:-")
    if _has_words(tail):
        # A last row with no recognisable number (or nothing parsed at all).
        entries.setdefault(tail, tail)
    return list(entries.values())


# --- steps -------------------------------------------------------------------------


def _unwrap_lines(text: str) -> list[str]:
    """Join hard-wrapped lines ("...tiếp nhận hồ\nsơ") back into their sentences."""
    lines: list[str] = []
    for line in text.splitlines():
        if lines and line[:1].islower() and not lines[-1].endswith((".", ":", ";", "!", "?")):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return lines


def _step_starts(text: str) -> list[int]:
    """Offsets of "Bước N" markers that open a step (not "theo Bước 2 nêu trên")."""
    starts = []
    for match in _STEP_MARKER.finditer(text):
        following = text[match.end() : match.end() + 1]
        if match.group("punct") or following.isupper() or following.isdigit():
            starts.append(match.start())
    return starts


def _parse_steps(value: Any) -> list[str]:
    """Split "Trình tự thực hiện" into steps at "Bước N:" markers, else at lines."""
    text = "\n".join(_unwrap_lines(_clean_block(value)))
    if _is_no_info(text):
        return []
    starts = _step_starts(text)
    if len(starts) >= 2:
        chunks = [text[: starts[0]]] + [
            text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)
        ]
    else:
        chunks = text.splitlines()
    steps = []
    for chunk in chunks:
        step = _STEP_BULLET.sub("", chunk.strip())
        # Drop the "a)" or "-" that introduced the next "Bước" marker.
        step = _TRAILING_MARKER.sub("", step).strip()
        if _has_words(step):
            steps.append(step)
    return steps


# --- result ------------------------------------------------------------------------


def _parse_result(value: Any) -> str:
    """Result names without their "Mã: KQ..." codes, plus the description if any."""
    body, description = _strip_page_chrome(_text(value))
    names = [_clean(part) for part in _RESULT_CODE.split(body)]
    names = [name for name in names if name and not _is_no_info(name)]
    parts = ["; ".join(names)] if names else []
    if description:
        parts.append(description)
    return "\n".join(parts)


# --- public API ----------------------------------------------------------------------


def parse_national_record(raw: dict) -> dict:
    """Turn one portal record into clean fields."""
    authority = _value(raw.get("co_quan_thuc_hien")) or _value(raw.get("co_quan_co_tham_quyen"))
    modes = _parse_filing_modes(raw.get("cach_thuc_thuc_hien"))
    conditions, _ = _strip_page_chrome(_text(raw.get("yeu_cau_dieu_kien")))
    conditions = _clean_block(conditions)
    return {
        "code": _clean(raw.get("ma_thu_tuc")),
        "title": _clean(raw.get("ten_thu_tuc")),
        "category": _value(raw.get("linh_vuc")),
        "level": _value(raw.get("cap_thuc_hien")),
        "ministry": _clean(raw.get("bo_nganh")) or None,
        "authority": authority,
        "who": _value(raw.get("doi_tuong_thuc_hien")),
        "steps": _parse_steps(raw.get("trinh_tu_thuc_hien")),
        "documents": _parse_documents(raw.get("thanh_phan_ho_so")),
        "filing_modes": modes,
        "fees": _summarise(modes, "fee", _same) or "Không quy định",
        "processing_time": _summarise(modes, "time", _human_time),
        "where_to_file": _value(raw.get("dia_chi_tiep_nhan")) or authority,
        "legal_basis": _parse_legal_basis(raw.get("can_cu_phap_ly")),
        "conditions": "" if _is_no_info(conditions) else conditions,
        "result": _parse_result(raw.get("ket_qua_xu_ly")),
        "url": _clean(raw.get("detail_url")),
    }


def iter_national_file(path: str | PathLike[str]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, raw record) for each line of a national procedures JSONL file."""
    for line_number, record in iter_jsonl(Path(path)):
        for field in ("ma_thu_tuc", "ten_thu_tuc"):
            if not _clean(record.get(field)):
                raise ValueError(f"{path}:{line_number}: record is missing {field!r}")
        yield line_number, record
