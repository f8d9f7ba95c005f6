"""Unit tests run with a known, local-only environment and freshly read settings in every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.core.devissuer import get_dev_issuer
from shared.core.settings import Settings, get_settings

UNIT_ENV = {"PROFILE": "test", "GOOGLE_CLOUD_PROJECT": "demo-unit", "AUTH_PROVIDER": "local"}


@pytest.fixture(autouse=True)
def unit_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only UNIT_ENV is set: nothing from the developer's shell leaks into a unit test."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in UNIT_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_dev_issuer.cache_clear()
    yield
    get_settings.cache_clear()
    get_dev_issuer.cache_clear()
