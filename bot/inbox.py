"""The inbox: inbound messages are stored first, answered next, and finished after a crash.

Webhooks store a message before answering 200 and process it right after; polling adapters do the
same in sequence. Whatever was stored but not answered when a process died is answered on the next
start, so no message is lost between the transport and the engine.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from bot.engine import ConversationEngine, Inbound, Outcome, pending_updates
from bot.models import InboundUpdate
from core.db import session_scope

logger = logging.getLogger(__name__)


def accept_inbound(engine: ConversationEngine, inbound: Inbound) -> int | None:
    """Store a message in the inbox; its id, or None when it is a retry already stored."""
    try:
        with session_scope() as session:
            update = engine.accept(session, inbound)
            return update.id if update is not None else None
    except IntegrityError:
        # A retry of the same message raced the first delivery and lost on the unique key: already stored.
        logger.info("%s message %s was stored by a concurrent delivery", inbound.channel, inbound.external_id)
        return None


def process_stored(engine: ConversationEngine, update_id: int) -> Outcome | None:
    """Answer one stored message in its own transaction (replies land in the outbox)."""
    try:
        with session_scope() as session:
            update = session.get(InboundUpdate, update_id)
            return engine.process(session, update) if update is not None else None
    except Exception:  # noqa: BLE001 - the transport already answered; log, never crash the server
        logger.exception("update %s could not be processed; it stays in the inbox", update_id)
    return None


def receive(engine: ConversationEngine, inbound: Inbound) -> Outcome:
    """Store, then answer, a message (two transactions, so a failure to answer keeps the message)."""
    update_id = accept_inbound(engine, inbound)
    if update_id is None:
        return Outcome("duplicate", duplicate=True)
    return process_stored(engine, update_id) or Outcome("failed")


def finish_pending(engine: ConversationEngine, channels: list[str]) -> int:
    """Answer the messages a previous run stored but did not answer; returns how many."""
    with session_scope() as session:
        ids = [u.id for u in pending_updates(session, channels)]
    for update_id in ids:
        process_stored(engine, update_id)
    if ids:
        logger.info("answered %d message(s) left in the inbox by the previous run", len(ids))
    return len(ids)
