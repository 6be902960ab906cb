"""Privacy in logs: ID-card numbers, phone numbers and tokens never appear unmasked."""

from __future__ import annotations

import logging

import pytest

from core.logging import MaskingFilter, mask_sensitive


@pytest.mark.parametrize(
    ("raw", "secret", "kept"),
    [
        ("CCCD của tôi là 001203004567", "001203004567", "*********567"),
        ("số cmnd 123456789 bị mất", "123456789", "******789"),
        ("gọi em 0912 345 678 nhé", "0912 345 678", "*******678"),
        ("sđt +84912345678", "+84912345678", "********678"),
        (
            "token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
            "[token]",
        ),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9", "[token]"),
    ],
)
def test_mask_sensitive(raw: str, secret: str, kept: str) -> None:
    masked = mask_sensitive(raw)
    assert secret not in masked
    assert kept in masked


def test_ordinary_numbers_stay() -> None:
    assert (
        mask_sensitive("lệ phí 70.000 đồng trong 7 ngày, năm 2026")
        == "lệ phí 70.000 đồng trong 7 ngày, năm 2026"
    )


def test_filter_masks_arguments_of_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.privacy")
    handler = caplog.handler
    handler.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="tests.privacy"):
            logger.info("citizen %s wrote from %s", "001203004567", "0987654321")
    finally:
        handler.removeFilter(handler.filters[-1])
    assert "001203004567" not in caplog.text
    assert "0987654321" not in caplog.text
    assert "567" in caplog.text
