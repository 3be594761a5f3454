"""Centiles in the PDF are printed at 0.1 and never read "100.0" or "0.0"."""

from __future__ import annotations

import pytest

from webapp.reports.pdf import centile_text


@pytest.mark.parametrize(
    ("centile", "text"),
    [
        (50.0, "50.0"),
        (99.9, "99.9"),
        (99.97, ">99.9"),
        (0.1, "0.1"),
        (0.04, "<0.1"),
        (2.345, "2.3"),
    ],
)
def test_centile_text(centile: float, text: str) -> None:
    assert centile_text(centile) == text
