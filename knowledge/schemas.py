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


class ProcedureTextIn(BaseModel):
    """A procedure's content in one language."""

    model_config = ConfigDict(extra="forbid")

    title: NonEmpty
    summary: str = ""
    who: str = ""
    steps: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    fees: str = ""
    processing_time: str = ""
    where_to_file: str = ""
    legal_basis: list[str] = Field(default_factory=list)
    result: str = ""
    conditions: str = ""
    aliases: list[str] = Field(default_factory=list)


class FaqIn(BaseModel):
    """Question variants sharing one answer."""

    model_config = ConfigDict(extra="forbid")

    lang: str = "vi"
    questions: list[NonEmpty] = Field(min_length=1)
    answer: str | None = None
    external_id: str | None = None


class ProcedureIn(BaseModel):
    """One procedure record of an import file."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    code: str | None = None
    category: str = ""
    authority: str = ""
    online_link: str = ""
    source: str = ""
    last_verified: dt.date | None = None
    vi: ProcedureTextIn
    en: ProcedureTextIn | None = None
    ko: ProcedureTextIn | None = None
    ru: ProcedureTextIn | None = None
    pl: ProcedureTextIn | None = None
    faq: list[FaqIn] = Field(default_factory=list)

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
