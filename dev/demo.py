"""Demo data for `make demo`: two companies with admins, a few buyers, a dozen events in four
cities; prints tokens to try the API with curl. Everything goes through the public API."""

from __future__ import annotations

import json
import urllib.request
from datetime import date, timedelta
from typing import Any

CITIES = {
    "Berlin": ("Europe/Berlin", 52.5200, 13.4050, ["Tempodrom", "Columbiahalle", "Uber Arena"]),
    "Paris": ("Europe/Paris", 48.8566, 2.3522, ["Olympia", "Zenith", "La Cigale"]),
    "London": ("Europe/London", 51.5074, -0.1278, ["O2 Academy Brixton", "Roundhouse", "KOKO"]),
    "New York": ("America/New_York", 40.7128, -74.0060, ["Bowery Ballroom", "Terminal 5", "Webster Hall"]),
}
SHOWS = ["Jazz Night", "Indie Rock Evening", "Electronic Live", "String Quartet"]
TOKEN_TTL = 12 * 3600


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _person(base: str, sub: str, name: str, role: str, company: dict[str, str] | None = None) -> str:
    email = f"{sub}@example.com"
    token = _call(base, "POST", "/dev/token", {"sub": sub, "email": email, "name": name, "expires_in": TOKEN_TTL})[
        "id_token"
    ]
    body: dict[str, Any] = {
        "name": name,
        "email": email,
        "username": sub,
        "country_code": "DE",
        "phone_number": "+4915112345678",
        "role": role,
    }
    if company:
        body["company"] = company
    _call(base, "POST", "/v1/users", body, token)
    return str(token)


def _company(name: str, city: str) -> dict[str, str]:
    return {
        "name": name,
        "address": f"1 Main Street, {city}",
        "email": f"office@{name.lower().replace(' ', '-')}.example.com",
        "country_code": "DE",
        "phone_number": "+493012345678",
        "registration_number": f"HRB-{abs(hash(name)) % 100000}",
    }


def load_demo(base_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    print("loading demo data ...", flush=True)
    tokens = {
        "admin_nightowl": _person(
            base_url, "admin_nightowl", "Nora Night", "admin", _company("Night Owl Live", "Berlin")
        ),
        "admin_harbour": _person(
            base_url, "admin_harbour", "Hugo Harbour", "admin", _company("Harbour Events", "Paris")
        ),
    }
    for buyer in ("buyer_ana", "buyer_ben", "buyer_cleo"):
        tokens[buyer] = _person(base_url, buyer, buyer.split("_")[1].title(), "user")
    start = date.today() + timedelta(days=30)
    count = 0
    for i, (city, (tz, lat, lng, venues)) in enumerate(CITIES.items()):
        for j, venue in enumerate(venues):
            admin = "admin_nightowl" if (i + j) % 2 == 0 else "admin_harbour"
            event = {
                "name": f"{SHOWS[(i + j) % len(SHOWS)]} in {city}",
                "event_date": (start + timedelta(days=7 * j + i)).isoformat(),
                "event_time": "20:00",
                "timezone": tz,
                "venue": venue,
                "location_lat": round(lat + 0.01 * j, 4),
                "location_long": round(lng + 0.01 * j, 4),
                "capacity": [50, 200, 500][j],
                "base_price": 2500 + 500 * j,
                "surge_price": 4000 + 500 * j,
                "surge_threshold": 0.8,
                "currency": "USD" if city == "New York" else ("GBP" if city == "London" else "EUR"),
            }
            _call(base_url, "POST", "/v1/events", event, tokens[admin])
            count += 1
    print(f"demo data: 2 companies with admins, 3 buyers, {count} events in {len(CITIES)} cities")
    print("tokens (valid 12 h):")
    for name, token in tokens.items():
        print(f"  {name}: {token}")
    print("try:")
    print(f"  curl -s '{base_url}/v1/events?q=jazz'")
    print(f"  curl -s '{base_url}/v1/events?lat=52.52&lng=13.405&radius_km=25'")
    print(f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/v1/users/me')
    return tokens
