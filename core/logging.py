"""Logging set-up with masking of ID-card numbers, phone numbers and tokens."""

from __future__ import annotations

import json
import logging
import re

# 12-digit identity numbers, 9-digit old ID numbers, Vietnamese phone numbers (0xxxxxxxxx / +84...)
# and bot tokens ("123456:ABC...") must never reach a log file unmasked.
_BOT_TOKEN = re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b")
_BEARER = re.compile(r"(?i)(bearer\s+|token[=:]\s*|secret[=:]\s*)[A-Za-z0-9._~+/=-]{8,}")
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.-]?\d){8,10}(?!\d)")
_DIGITS = re.compile(r"(?<!\d)\d{9}(?:\d{3})?(?!\d)")


def mask_sensitive(text: str) -> str:
    """Replace ID numbers, phone numbers and tokens in text by masked forms."""
    text = _BOT_TOKEN.sub("[token]", text)
    text = _BEARER.sub(lambda m: m.group(1) + "[token]", text)
    text = _PHONE.sub(lambda m: _keep_tail(m.group(0)), text)
    return _DIGITS.sub(lambda m: _keep_tail(m.group(0)), text)


def _keep_tail(value: str) -> str:
    """Keep only the last three digits, enough to tell numbers apart in support work."""
    digits = re.sub(r"\D", "", value)
    return "*" * (len(digits) - 3) + digits[-3:]


class MaskingFilter(logging.Filter):
    """Masks the fully formatted message of every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, masked, so no argument leaks unmasked."""
        record.msg = mask_sensitive(record.getMessage())
        record.args = None
        return True


# Alembic narrates every start-up at INFO, faiss which CPU builds it tried: only their problems matter.
QUIET_LOGGERS = ("alembic", "faiss.loader")


class QuietLibraries(logging.Filter):
    """Drops the chatter of libraries that narrate routine work, keeping their warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless a quiet library logged it below WARNING."""
        return record.levelno >= logging.WARNING or not record.name.startswith(QUIET_LOGGERS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for production log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record's essentials."""
        payload = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = mask_sensitive(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Install one masked handler on the root logger."""
    handler = logging.StreamHandler()
    handler.addFilter(QuietLibraries())
    handler.addFilter(MaskingFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
