"""Validated shapes of knowledge-base records as they come in and go out (YAML, JSON, CSV, API)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,118}$")]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# Full content is written in Vietnamese and English; Korean, Russian and Polish carry a title and the
# phrases people search with, so that foreign residents find the procedure (its card shows English).
LANGS = ("vi", "en", "ko", "ru", "pl")
CONTENT_LANGS = ("vi", "en")


# Bounds well above the longest field of the 2,642 national records (a title of 1,094 characters, conditions of
# 44,580, a step of 9,191, 63 documents): generous for real procedures, refusing a pasted book.
MAX_TITLE = 1500
MAX_TEXT = 60_000
MAX_ITEM = 12_000
MAX_ITEMS = 200
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Item = Annotated[str, StringConstraints(max_length=MAX_ITEM)]
Items = Annotated[list[Item], Field(max_length=MAX_ITEMS)]


class ProcedureTextIn(BaseModel):
    """A procedure's content in one language."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    summary: Text = ""
    who: Text = ""
    steps: Items = Field(default_factory=list)
    documents: Items = Field(default_factory=list)
    fees: Text = ""
    processing_time: Text = ""
    where_to_file: Text = ""
    legal_basis: Items = Field(default_factory=list)
    result: Text = ""
    conditions: Text = ""
    aliases: Items = Field(default_factory=list)


class FaqIn(BaseModel):
    """Question variants sharing one answer."""

    model_config = ConfigDict(extra="forbid")

    lang: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] = "vi"
    questions: list[Annotated[NonEmpty, StringConstraints(max_length=2000)]] = Field(min_length=1, max_length=50)
    answer: Text | None = None
    external_id: Annotated[str, StringConstraints(max_length=80)] | None = None


class ProcedureIn(BaseModel):
    """One procedure record of an import file."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    code: str | None = None
    category: Annotated[str, StringConstraints(max_length=200)] = ""
    authority: Text = ""
    online_link: Annotated[str, StringConstraints(max_length=2000)] = ""
    source: Text = ""
    last_verified: dt.date | None = None
    vi: ProcedureTextIn
    en: ProcedureTextIn | None = None
    ko: ProcedureTextIn | None = None
    ru: ProcedureTextIn | None = None
    pl: ProcedureTextIn | None = None
    faq: list[FaqIn] = Field(default_factory=list, max_length=200)

    @field_validator("code")
    @classmethod
    def _code_shape(cls, value: str | None) -> str | None:
        """National codes look like 1.001193 or 2.000123."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not re.fullmatch(r"\d+\.\d+", value):
            raise ValueError(f"national code must look like 1.001193, got {value!r}")
        return value

    def texts(self) -> dict[str, ProcedureTextIn]:
        """The languages present."""
        return {lang: text for lang in LANGS if (text := getattr(self, lang)) is not None}


class PortalFaqIn(BaseModel):
    """One line of the portal's FAQ file."""

    model_config = ConfigDict(extra="ignore")

    faq_id: NonEmpty
    question: NonEmpty
    answer: str | None = None
    ministry: str | None = None
    procedures: list[str] = Field(default_factory=list)
