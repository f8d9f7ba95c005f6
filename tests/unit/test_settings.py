"""Settings: local stand-ins stay local, production needs its secrets, issuers are derived."""

from __future__ import annotations

import pytest

from shared.core.settings import FIREBASE_JWKS_URL, ConfigurationError, get_settings, load_settings
from tests.unit.conftest import UNIT_ENV

PROD = {
    "PROFILE": "prod",
    "GOOGLE_CLOUD_PROJECT": "tickets-prod",
    "STRIPE_SECRET_KEY": "sk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_abc",
    "TICKET_SIGNING_KEYS": "k2026:" + "A" * 43,
    "WEBHOOK_SECRET_KEY": "B" * 43 + "=",
}
LOCAL = {"PROFILE": "local", "GOOGLE_CLOUD_PROJECT": "demo-tickets"}
LOCAL_ONLY = [
    {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8081"},
    {"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"},
    {"CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:8123"},
    {"STRIPE_API_BASE": "http://127.0.0.1:8420"},
    {"AUTH_PROVIDER": "local"},
    {"DEV_ISSUER_KEY_FILE": "dev-issuer.pem"},
    {"FAULT_INJECTION": "skip_outbox_publish"},
    {"FAULT_PLAN": "seed=1,rate=0.05"},
]


@pytest.fixture(autouse=True)
def empty_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings(env) also reads the process environment (see the test below): start from none."""
    for name in UNIT_ENV:
        monkeypatch.delenv(name)


def test_explicit_environment_is_not_mixed_with_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROVIDER", "local")
    assert load_settings(PROD).auth_provider == "firebase"


@pytest.mark.parametrize("profile", ["local", "test"])
def test_local_profiles_start_with_a_demo_project_and_every_stand_in(profile: str) -> None:
    env = {"PROFILE": profile, "GOOGLE_CLOUD_PROJECT": "demo-x"}
    for extra in LOCAL_ONLY:
        env.update(extra)
    settings = load_settings(env)
    assert settings.profile == profile
    assert settings.is_local


def test_production_profile_starts_with_its_secrets() -> None:
    settings = load_settings(PROD)
    assert settings.profile == "prod"
    assert not settings.is_local


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({**PROD, "PROFILE": "production"})


@pytest.mark.parametrize("profile", ["staging", "prod"])
@pytest.mark.parametrize("extra", LOCAL_ONLY, ids=lambda e: next(iter(e)))
def test_local_stand_ins_are_refused_outside_local_profiles(profile: str, extra: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="local and test only"):
        load_settings({**PROD, "GOOGLE_CLOUD_PROJECT": "demo-x", "PROFILE": profile, **extra})


@pytest.mark.parametrize("extra", LOCAL_ONLY, ids=lambda e: next(iter(e)))
def test_local_stand_ins_are_refused_for_a_real_project(extra: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="demo- projects only"):
        load_settings({**LOCAL, "GOOGLE_CLOUD_PROJECT": "tickets-prod", **extra})


def test_local_profile_is_refused_for_a_real_project() -> None:
    with pytest.raises(ConfigurationError, match="demo- project"):
        load_settings({**LOCAL, "GOOGLE_CLOUD_PROJECT": "tickets-prod"})


@pytest.mark.parametrize(
    "missing", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "TICKET_SIGNING_KEYS", "WEBHOOK_SECRET_KEY"]
)
@pytest.mark.parametrize("profile", ["staging", "prod"])
def test_production_without_its_secrets_is_refused(profile: str, missing: str) -> None:
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        load_settings({**env, "PROFILE": profile})


@pytest.mark.parametrize(
    "keys", ["k1", "k1:short", "bad kid:" + "A" * 43, "k1:" + "A" * 43 + ",k1:" + "B" * 43, "k1:" + "!" * 43]
)
def test_malformed_ticket_signing_keys_stop_the_process_without_showing_them(keys: str) -> None:
    with pytest.raises(ConfigurationError, match="TICKET_SIGNING_KEYS") as refused:
        load_settings({**PROD, "TICKET_SIGNING_KEYS": keys})
    assert keys.partition(":")[2][:10] not in str(refused.value) or not keys.partition(":")[2]


def test_empty_stripe_secret_counts_as_missing() -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY"):
        load_settings({**PROD, "STRIPE_SECRET_KEY": ""})


@pytest.mark.parametrize(
    "extra",
    [{}, {"AUTH_ISSUER": "https://kc.example/realms/t"}, {"AUTH_JWKS_URL": "https://kc.example/certs"}],
)
def test_oidc_needs_issuer_and_jwks_url(extra: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="AUTH_ISSUER and AUTH_JWKS_URL"):
        load_settings({**PROD, "AUTH_PROVIDER": "oidc", **extra})


def test_oidc_with_issuer_and_jwks_url_uses_them() -> None:
    settings = load_settings(
        {
            **PROD,
            "AUTH_PROVIDER": "oidc",
            "AUTH_ISSUER": "https://kc.example/realms/t",
            "AUTH_JWKS_URL": "https://kc.example/certs",
            "AUTH_AUDIENCE": "tickets-api",
        }
    )
    assert (settings.issuer, settings.jwks_url, settings.audience) == (
        "https://kc.example/realms/t",
        "https://kc.example/certs",
        "tickets-api",
    )


def test_firebase_defaults_derive_from_the_project() -> None:
    settings = load_settings(PROD)
    assert settings.auth_provider == "firebase"
    assert settings.issuer == "https://securetoken.google.com/tickets-prod"
    assert settings.audience == "tickets-prod"
    assert settings.jwks_url == FIREBASE_JWKS_URL


def test_local_issuer_without_issuer_setting_cannot_name_one() -> None:
    settings = load_settings({**LOCAL, "AUTH_PROVIDER": "local"})
    with pytest.raises(ConfigurationError):
        _ = settings.issuer


@pytest.mark.parametrize("leeway", ["-1", "61"])
def test_leeway_beyond_a_minute_is_refused(leeway: str) -> None:
    with pytest.raises(ConfigurationError):
        load_settings({**PROD, "AUTH_LEEWAY_SECONDS": leeway})


def test_cors_origins_are_split_and_trimmed() -> None:
    settings = load_settings({**LOCAL, "CORS_ALLOWED_ORIGINS": " https://a.example , ,https://b.example"})
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_no_cors_origin_by_default() -> None:
    assert load_settings(LOCAL).cors_origins == ()


def test_environment_keys_are_case_insensitive() -> None:
    settings = load_settings({"profile": "test", "google_cloud_project": "demo-y", "hold_ttl_seconds": "60"})
    assert (settings.profile, settings.gcp_project, settings.hold_ttl_seconds) == ("test", "demo-y", 60)


def test_get_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**UNIT_ENV, "HOLD_TTL_SECONDS": "120"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    assert (settings.profile, settings.gcp_project, settings.hold_ttl_seconds) == ("test", "demo-unit", 120)


def test_get_settings_refuses_an_unsafe_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFILE", "prod")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "tickets-prod")
    monkeypatch.setenv("AUTH_PROVIDER", "local")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="refusing to start"):
        get_settings()
