"""Dashboard pages: the knowledge base (to be filled)."""

from __future__ import annotations

from fastapi import APIRouter

from admin_api.dashboard import PREFIX, PageRoute

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)
