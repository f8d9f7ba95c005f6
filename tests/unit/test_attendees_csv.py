"""The attendees CSV: ids exactly as the API shows them; only what a person typed is defused."""

from __future__ import annotations

from shared.services.tickets.attendees import _cell


def test_only_free_text_that_looks_like_a_formula_is_prefixed() -> None:
    assert _cell("-Ab3dEf-1", free_text=False) == "-Ab3dEf-1"
    assert _cell("=1+1", free_text=True) == "'=1+1"
    assert _cell("@SUM(A1)", free_text=True) == "'@SUM(A1)"
    assert _cell("Ada Lovelace", free_text=True) == "Ada Lovelace"
    assert _cell(None, free_text=True) == ""
