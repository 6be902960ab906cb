"""Reading and writing knowledge-base files (YAML, JSON, JSON Lines, CSV) with clear errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from core.errors import Invalid
from core.yamlfiles import load_yaml
from knowledge.schemas import LANGS

FORMATS = ("yaml", "json", "jsonl", "csv")
LIST_FIELDS = ("steps", "documents", "legal_basis", "aliases")
SCALAR_TEXT_FIELDS = (
    "title",
    "summary",
    "who",
    "fees",
    "processing_time",
    "where_to_file",
    "result",
    "conditions",
)
TOP_FIELDS = ("slug", "code", "category", "authority", "online_link", "source", "last_verified")
# One CSV cell holds a whole list; items are separated by a line break, which spreadsheets keep inside a cell.
CSV_LIST_SEPARATOR = "\n"


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The file format from an explicit name or the file's suffix."""
    name = (fmt or _plain_suffix(path).lstrip(".")).lower()
    name = {"yml": "yaml", "ndjson": "jsonl"}.get(name, name)
    if name not in FORMATS:
        raise Invalid(f"{path}: unknown format {name!r}; use one of {', '.join(FORMATS)}")
    return name


def _plain_suffix(path: Path) -> str:
    """The suffix that names the format: '.jsonl' for 'x.jsonl.gz'."""
    return Path(path.stem).suffix if path.suffix.lower() == ".gz" else path.suffix


def read_text(path: Path) -> str:
    """The file's text (gzip-compressed when it ends in .gz), refusing anything that is not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Invalid(f"{path}: no such file") from None
    except IsADirectoryError:
        raise Invalid(f"{path}: is a folder, not a file") from None
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise Invalid(f"{path}: not a complete gzip file ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        ) from None


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file; Invalid names a bad line."""
    for lineno, line in enumerate(read_text(Path(path)).splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise Invalid(f"{path}:{lineno}: expected a JSON object, got {type(item).__name__}")
        yield lineno, item


def read_records(path: Path, fmt: str | None = None) -> list[dict[str, Any]]:
    """Raw procedure records of a YAML, JSON, JSON Lines or CSV file."""
    kind = detect_format(path, fmt)
    text = read_text(path)
    if kind == "yaml":
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            raise Invalid(f"{path}: invalid YAML: {exc}") from None
    elif kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid(
                f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    elif kind == "jsonl":
        data = [item for _lineno, item in iter_jsonl(path)]
    else:
        data = [_unflatten_csv_row(row) for row in csv.DictReader(io.StringIO(text))]
    if data is None:
        return []
    if isinstance(data, dict) and isinstance(data.get("procedures"), list):
        data = data["procedures"]
    if not isinstance(data, list):
        raise Invalid(f"{path}: expected a list of procedure records, got {type(data).__name__}")
    for index, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise Invalid(f"{path}: record {index}: expected a mapping of fields, got {type(item).__name__}")
    return data


def write_records(records: Iterable[dict[str, Any]], path: Path, fmt: str | None = None) -> int:
    """Write procedure records; returns how many were written."""
    kind = detect_format(path, fmt)
    items = list(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "yaml":
        path.write_text(
            yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8"
        )
    elif kind == "json":
        path.write_text(json.dumps(items, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    elif kind == "jsonl":
        lines = (json.dumps(item, ensure_ascii=False, default=str) for item in items)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=csv_columns())
            writer.writeheader()
            for item in items:
                writer.writerow(_flatten_csv_row(item))
    return len(items)


def csv_columns() -> list[str]:
    """Column names of the CSV layout: top fields, then <lang>_<field>, then FAQ as JSON."""
    cols = list(TOP_FIELDS)
    for lang in LANGS:
        cols += [f"{lang}_{name}" for name in (*SCALAR_TEXT_FIELDS, *LIST_FIELDS)]
    return [*cols, "faq_json"]


def _flatten_csv_row(item: dict[str, Any]) -> dict[str, str]:
    row = {name: "" if item.get(name) is None else str(item.get(name)) for name in TOP_FIELDS}
    for lang in LANGS:
        text = item.get(lang) or {}
        for name in SCALAR_TEXT_FIELDS:
            row[f"{lang}_{name}"] = text.get(name) or ""
        for name in LIST_FIELDS:
            row[f"{lang}_{name}"] = CSV_LIST_SEPARATOR.join(text.get(name) or [])
    row["faq_json"] = json.dumps(item.get("faq") or [], ensure_ascii=False) if item.get("faq") else ""
    return row


def _unflatten_csv_row(row: dict[str, str | None]) -> dict[str, Any]:
    item: dict[str, Any] = {name: (row.get(name) or None) for name in TOP_FIELDS if name in row}
    for lang in LANGS:
        text: dict[str, Any] = {}
        for name in SCALAR_TEXT_FIELDS:
            value = row.get(f"{lang}_{name}")
            if value:
                text[name] = value
        for name in LIST_FIELDS:
            value = row.get(f"{lang}_{name}")
            if value:
                text[name] = [part.strip() for part in value.split(CSV_LIST_SEPARATOR) if part.strip()]
        if text:
            item[lang] = text
    faq = row.get("faq_json")
    if faq:
        try:
            item["faq"] = json.loads(faq)
        except json.JSONDecodeError as exc:
            item["faq"] = f"<invalid JSON: {exc.msg}>"
    extra = set(row) - set(csv_columns())
    for name in extra:
        item[name] = row[name]
    return item
