"""Knowledge-base admin API (to be filled)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/kb", tags=["knowledge base"])
