"""What a client sees when it sends something wrong: a precise 4xx problem, never a 5xx."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import Api, event_body, user_body

MAX_BODY = 64 * 1024
JSON = {"Content-Type": "application/json"}


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert (body["status"], body["code"]) == (status, code)
    assert "Traceback" not in response.text
    return dict(body)


def error_fields(body: dict[str, Any]) -> set[str]:
    return {str(e.get("field")) for e in body.get("errors", [])}


@pytest.fixture(scope="module")
def admin(api: Api) -> tuple[str, dict[str, Any]]:
    return api.register_admin()


@pytest.fixture(scope="module")
def event(api: Api, admin: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return api.create_event(admin[0], name=f"Errors {secrets.token_hex(4)}")


@pytest.fixture
def fresh_event(api: Api, admin: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return api.create_event(admin[0])


def post_event(api: Api, token: str, body: Any) -> requests.Response:
    return api.call("POST", "/v1/events", token, json=body)


# ---- malformed bodies -----------------------------------------------------------------------


MALFORMED = [b"{", b'{"name": }', b"not json", b"{'name': 'x'}", b'{"name": "x",}', b"\xff\xfe{}", b"", b"   "]


@pytest.mark.parametrize("raw", MALFORMED, ids=[repr(m) for m in MALFORMED])
def test_malformed_json_is_a_validation_error_on_every_write(
    api: Api, admin: tuple[str, dict[str, Any]], event: dict[str, Any], raw: bytes
) -> None:
    requests_to_send = [
        ("POST", "/v1/users", api.token(), {}),
        ("PATCH", "/v1/users/me", admin[0], {}),
        ("POST", "/v1/events", admin[0], {}),
        ("PATCH", f"/v1/events/{event['id']}", admin[0], {"If-Match": f'"{event["version"]}"'}),
    ]
    for method, path, token, headers in requests_to_send:
        response = api.call(method, path, token, data=raw, headers={**JSON, **headers})
        assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("raw", [b"[]", b"null", b"5", b'"text"', b"[{}]"])
def test_json_that_is_not_an_object_is_refused(api: Api, admin: tuple[str, dict[str, Any]], raw: bytes) -> None:
    assert_problem(api.call("POST", "/v1/events", admin[0], data=raw, headers=JSON), 422, "validation_error")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity", "5"),
        ("capacity", 5.5),
        ("capacity", True),
        ("base_price", "2500"),
        ("base_price", 25.5),
        ("location_lat", "52.5"),
        ("surge_threshold", "0.8"),
        ("name", 5),
        ("event_date", 20300501),
        ("event_time", 2000),
        ("status", 1),
        ("max_tickets_per_booking", "10"),
    ],
)
def test_wrong_types_are_refused_not_coerced(
    api: Api, admin: tuple[str, dict[str, Any]], field: str, value: Any
) -> None:
    response = post_event(api, admin[0], event_body(**{field: value}))

    body = assert_problem(response, 422, "validation_error")
    assert field in error_fields(body)


def test_wrong_types_in_registration_are_refused(api: Api) -> None:
    token = api.token()

    response = api.call("POST", "/v1/users", token, json=user_body("user") | {"phone_number": 4915112345678})

    assert "phone_number" in error_fields(assert_problem(response, 422, "validation_error"))
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


def test_every_invalid_field_is_listed(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    body = event_body(capacity="5", location_lat=91, currency="euro", extra_field=1)
    del body["venue"]

    problem = assert_problem(post_event(api, admin[0], body), 422, "validation_error")

    assert {"capacity", "location_lat", "currency", "extra_field", "venue"} <= error_fields(problem)
    for error in problem["errors"]:
        assert isinstance(error["message"], str)
        assert error["message"]


@pytest.mark.parametrize("extra", [{"sold": 0}, {"id": "mine"}, {"company_id": "other"}, {"version": 7}])
def test_unknown_or_server_owned_fields_are_refused_on_create(
    api: Api, admin: tuple[str, dict[str, Any]], extra: dict[str, Any]
) -> None:
    name = f"Refused {secrets.token_hex(5)}"

    problem = assert_problem(post_event(api, admin[0], event_body(name=name) | extra), 422, "validation_error")

    assert set(extra) <= error_fields(problem)
    assert api.call("GET", "/v1/events", params={"q": name}).json()["items"] == []


def test_unknown_fields_are_refused_on_every_write(
    api: Api, admin: tuple[str, dict[str, Any]], fresh_event: dict[str, Any]
) -> None:
    cases = [
        ("POST", "/v1/users", api.token(), user_body("user") | {"unknown": 1}, {}),
        ("PATCH", "/v1/users/me", admin[0], {"name": "X", "unknown": 1}, {}),
        ("PATCH", f"/v1/events/{fresh_event['id']}", admin[0], {"name": "X", "unknown": 1}, {"If-Match": '"1"'}),
    ]
    for method, path, token, body, headers in cases:
        problem = assert_problem(api.call(method, path, token, json=body, headers=headers), 422, "validation_error")
        assert "unknown" in error_fields(problem)


# ---- body size ------------------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def test_body_of_exactly_64_kib_is_accepted(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    response = api.call("POST", "/v1/events", admin[0], data=padded(event_body(), MAX_BODY), headers=JSON)

    assert response.status_code == 201, response.text


def test_body_one_byte_over_64_kib_is_payload_too_large(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    name = f"Too large {secrets.token_hex(5)}"

    response = api.call("POST", "/v1/events", admin[0], data=padded(event_body(name=name), MAX_BODY + 1), headers=JSON)

    assert_problem(response, 413, "payload_too_large")
    assert api.call("GET", "/v1/events", params={"q": name}).json()["items"] == []


def test_large_body_is_payload_too_large_on_every_write(
    api: Api, admin: tuple[str, dict[str, Any]], event: dict[str, Any]
) -> None:
    big = json.dumps({"name": "x" * (MAX_BODY * 2)}).encode()
    cases = [
        ("POST", "/v1/users", api.token(), {}),
        ("PATCH", "/v1/users/me", admin[0], {}),
        ("POST", "/v1/events", admin[0], {}),
        ("PATCH", f"/v1/events/{event['id']}", admin[0], {"If-Match": f'"{event["version"]}"'}),
    ]
    for method, path, token, headers in cases:
        response = api.call(method, path, token, data=big, headers={**JSON, **headers})
        assert_problem(response, 413, "payload_too_large")


def test_chunked_body_over_64_kib_is_payload_too_large(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    raw = padded(event_body(), MAX_BODY + 4096)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 4096):
            yield raw[start : start + 4096]

    response = api.call("POST", "/v1/events", admin[0], data=chunks(), headers=JSON)

    assert_problem(response, 413, "payload_too_large")


# ---- out-of-range values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("location_lat", 91), ("location_lat", -91), ("location_long", 181), ("location_long", -181)],
)
def test_coordinates_out_of_range_are_refused(
    api: Api, admin: tuple[str, dict[str, Any]], fresh_event: dict[str, Any], field: str, value: float
) -> None:
    assert field in error_fields(
        assert_problem(post_event(api, admin[0], event_body(**{field: value})), 422, "validation_error")
    )

    patched = api.call(
        "PATCH", f"/v1/events/{fresh_event['id']}", admin[0], json={field: value}, headers={"If-Match": '"1"'}
    )
    assert_problem(patched, 422, "validation_error")


@pytest.mark.parametrize("params", [{"lat": 91, "lng": 0, "radius_km": 5}, {"lat": 0, "lng": 181, "radius_km": 5}])
def test_search_coordinates_out_of_range_are_refused(api: Api, params: dict[str, Any]) -> None:
    assert_problem(api.call("GET", "/v1/events", params=params), 422, "validation_error")


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "Europe/Berlinn", "", "Europe/", "+02:00", "../etc/passwd"])
def test_unknown_timezone_is_refused(api: Api, admin: tuple[str, dict[str, Any]], timezone: str) -> None:
    problem = assert_problem(post_event(api, admin[0], event_body(timezone=timezone)), 422, "validation_error")
    assert "timezone" in error_fields(problem)


@pytest.mark.parametrize("timezone", ["localtime", "posixrules"])
def test_host_dependent_zone_files_are_not_iana_timezones(
    api: Api, admin: tuple[str, dict[str, Any]], timezone: str
) -> None:
    """`localtime` is whatever the server machine is set to: an event's start must not depend on it."""
    assert_problem(post_event(api, admin[0], event_body(timezone=timezone)), 422, "validation_error")


@pytest.mark.parametrize(
    "when", [{"event_date": "2001-01-01"}, {"event_date": "2020-06-15", "event_time": "12:00", "timezone": "UTC"}]
)
def test_past_date_is_refused(api: Api, admin: tuple[str, dict[str, Any]], when: dict[str, str]) -> None:
    problem = assert_problem(post_event(api, admin[0], event_body(**when)), 422, "validation_error")
    assert "event_date" in error_fields(problem)


# ---- search parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "abc"},
        {"limit": -1},
        {"limit": 1.5},
        {"radius_km": 5},
        {"radius_km": 5, "lng": 13.4},
        {"lat": 52.5},
        {"lat": 52.5, "lng": 13.4},
        {"lat": 52.5, "lng": 13.4, "radius_km": 0},
        {"lat": 52.5, "lng": 13.4, "radius_km": -3},
        {"lat": "north", "lng": 13.4, "radius_km": 3},
        {"from": "2030-13-01"},
        {"from": "tomorrow"},
        {"to": "2030-02-30"},
        {"from": "2031-01-02", "to": "2031-01-01"},
        {"q": ""},
        {"q": "!!!"},
        {"q": "x" * 201},
        {"page_token": "not-a-token"},
        {"unknown": "1"},
    ],
)
def test_bad_search_parameters_are_refused(api: Api, params: dict[str, Any]) -> None:
    assert_problem(api.call("GET", "/v1/events", params=params), 422, "validation_error")


def test_repeated_search_parameter_is_refused(api: Api) -> None:
    response = api.call("GET", "/v1/events?limit=5&limit=6")

    assert_problem(response, 422, "validation_error")


# ---- odd ids, unknown paths, wrong methods --------------------------------------------------


ODD_EVENT_PATHS = [
    "/v1/events/..%2F..",
    "/v1/events/..%2F..%2Fusers%2Fme",
    "/v1/events/" + "a" * 200,
    "/v1/events/a%20b",
    "/v1/events/%00",
    "/v1/events/%C3%A9v",
    "/v1/events/id.json",
    "/v1/events/__x__",
    "/v1/events/__name__",
]


@pytest.mark.parametrize("path", ODD_EVENT_PATHS)
def test_odd_event_ids_are_not_found(api: Api, admin: tuple[str, dict[str, Any]], path: str) -> None:
    assert_problem(api.call("GET", path), 404, "not_found")
    assert_problem(api.call("GET", path, admin[0]), 404, "not_found")
    patched = api.call("PATCH", path, admin[0], json={"name": "X"}, headers={"If-Match": '"1"'})
    assert_problem(patched, 404, "not_found")


@pytest.mark.parametrize("path", ["/v1/companies/..%2F..", "/v1/companies/" + "c" * 200, "/v1/companies/a%20b"])
def test_odd_company_ids_are_not_found(api: Api, admin: tuple[str, dict[str, Any]], path: str) -> None:
    assert_problem(api.call("GET", path, admin[0]), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/nope", "/v1", "/v1/", "/v1/nope", "/v2/events", "/v1/events/abc/nope", "/v1/users/someone", "/v1/companies"],
)
def test_unknown_paths_are_not_found_problems(api: Api, path: str) -> None:
    assert_problem(api.call("GET", path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/events/{event}"),
        ("PUT", "/v1/events/{event}"),
        ("POST", "/v1/events/{event}"),
        ("PUT", "/v1/events"),
        ("DELETE", "/v1/users/me"),
        ("POST", "/v1/users/me"),
        ("GET", "/v1/users"),
        ("PATCH", "/v1/companies/{company}"),
        ("POST", "/healthz"),
        ("DELETE", "/v1/openapi.json"),
    ],
)
def test_wrong_method_is_method_not_allowed(
    api: Api, admin: tuple[str, dict[str, Any]], event: dict[str, Any], method: str, path: str
) -> None:
    url = path.format(event=event["id"], company=admin[1]["company_id"])

    response = api.call(method, url, admin[0], json={})

    assert response.status_code == 405, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail", "code"} <= set(response.json())
    assert api.call("GET", f"/v1/events/{event['id']}").json()["version"] == event["version"]


def test_method_not_allowed_lists_the_allowed_methods(api: Api, event: dict[str, Any]) -> None:
    """RFC 9110 15.5.6: a 405 response carries Allow."""
    response = api.call("DELETE", f"/v1/events/{event['id']}")

    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert {"GET", "PATCH"} <= allowed


# ---- never a 5xx ----------------------------------------------------------------------------


def tampered_page_token(api: Api, admin_token: str, **changes: Any) -> tuple[str, str]:
    """The words of a real search and its real next_page_token, with fields changed by the client."""
    word = "t" + secrets.token_hex(6)
    for day in ("2037-01-01", "2037-01-02"):
        api.create_event(admin_token, name=f"Paging {word}", event_date=day)
    token = api.call("GET", "/v1/events", params={"q": word, "limit": 1}).json()["next_page_token"]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return word, forged


@pytest.mark.parametrize(
    "changes",
    [{"id": "a/b"}, {"id": "__x__"}, {"id": ""}, {"id": "a" * 1500}, {"t": "0001-01-01T00:00:00+00:00"}],
    ids=["slash_in_id", "reserved_id", "empty_id", "long_id", "year_one"],
)
def test_tampered_page_token_is_never_a_server_error(
    api: Api, admin: tuple[str, dict[str, Any]], changes: dict[str, Any]
) -> None:
    word, token = tampered_page_token(api, admin[0], **changes)

    response = api.call("GET", "/v1/events", params={"q": word, "limit": 1, "page_token": token})

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "params",
    [{"from": "0001-01-01"}, {"to": "9999-12-31"}, {"from": "9999-12-31"}, {"to": "0001-01-01"}],
    ids=["from_year_one", "to_year_9999", "from_year_9999", "to_year_one"],
)
def test_extreme_search_dates_are_never_a_server_error(api: Api, params: dict[str, str]) -> None:
    response = api.call("GET", "/v1/events", params={**params, "q": "z" + secrets.token_hex(6)})

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "when",
    [
        {"event_date": "9999-12-31", "event_time": "23:59", "timezone": "America/Los_Angeles"},
        {"event_date": "9999-12-31", "event_time": "23:59", "timezone": "Pacific/Kiritimati"},
        {"event_date": "0001-01-01", "event_time": "00:00", "timezone": "Pacific/Kiritimati"},
    ],
    ids=["last_day_los_angeles", "last_day_kiritimati", "first_day_kiritimati"],
)
def test_extreme_event_dates_are_never_a_server_error(
    api: Api, admin: tuple[str, dict[str, Any]], fresh_event: dict[str, Any], when: dict[str, str]
) -> None:
    created = post_event(api, admin[0], event_body(**when))
    patched = api.call("PATCH", f"/v1/events/{fresh_event['id']}", admin[0], json=when, headers={"If-Match": '"1"'})

    for response in (created, patched):
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert_problem(response, 422, "validation_error")


NASTY_BODIES = [
    b"[" * 10_000 + b"]" * 10_000,
    b'{"capacity": NaN}',
    b'{"capacity": Infinity}',
    json.dumps(event_body(capacity=10**40)).encode(),
    json.dumps(event_body()).replace("52.5009", "1e400").encode(),
    json.dumps(event_body(name="\u0000\u202e")).encode(),
    b'{"name": "\\ud800"}',
    json.dumps(event_body(event_date="99999-01-01")).encode(),
    json.dumps(event_body(event_time="25:61")).encode(),
    json.dumps(event_body(description=None, name=None)).encode(),
]


@pytest.mark.parametrize("raw", NASTY_BODIES, ids=[f"body{i}" for i in range(len(NASTY_BODIES))])
def test_nasty_bodies_are_never_a_server_error(api: Api, admin: tuple[str, dict[str, Any]], raw: bytes) -> None:
    response = api.call("POST", "/v1/events", admin[0], data=raw, headers=JSON)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-Id": "x" * 5000},
        {"X-Request-Id": "a b\tc"},
        {"If-Match": '"' + "9" * 400 + '"'},
        {"If-Match": "*"},
        {"Content-Type": "text/plain"},
        {"Authorization": "Bearer " + "a" * 8000},
        {"Authorization": "Bearer a.b"},
        {"X-Cloud-Trace-Context": "zz/1;o=1"},
    ],
)
def test_odd_headers_are_never_a_server_error(
    api: Api, admin: tuple[str, dict[str, Any]], fresh_event: dict[str, Any], headers: dict[str, str]
) -> None:
    merged = {"Authorization": f"Bearer {admin[0]}", "If-Match": '"1"', **headers}

    response = api.call("PATCH", f"/v1/events/{fresh_event['id']}", json={"name": "Odd"}, headers=merged)

    assert response.status_code < 500, response.text


@pytest.mark.parametrize("query", ["q=%zz", "q=%00abc", "limit=%FF", "from=%", "lat=1e999&lng=0&radius_km=1"])
def test_odd_query_strings_are_never_a_server_error(api: Api, query: str) -> None:
    response = api.call("GET", f"/v1/events?{query}")

    assert response.status_code < 500, response.text


# ---- request ids ----------------------------------------------------------------------------


def test_every_response_carries_a_request_id(
    api: Api, admin: tuple[str, dict[str, Any]], event: dict[str, Any]
) -> None:
    responses = {
        "200": api.call("GET", "/healthz"),
        "201": api.call("POST", "/v1/events", admin[0], json=event_body()),
        "204": api.call("OPTIONS", "/v1/events", headers={"Origin": "https://example.com"}),
        "401": api.call("GET", "/v1/users/me"),
        "403": api.call("GET", "/v1/users/me", api.token()),
        "404 route": api.call("GET", "/v1/events/a/b"),
        "404 object": api.call("GET", "/v1/events/noSuchEvent0000000"),
        "405": api.call("DELETE", f"/v1/events/{event['id']}"),
        "413": api.call("POST", "/v1/events", admin[0], data=b"x" * (MAX_BODY + 1), headers=JSON),
        "422": api.call("GET", "/v1/events", params={"limit": 0}),
        "428": api.call("PATCH", f"/v1/events/{event['id']}", admin[0], json={"name": "X"}),
        "dev token": api.call("POST", "/dev/token", json={"sub": "x"}),
    }
    missing = [name for name, r in responses.items() if not r.headers.get("X-Request-Id")]
    assert missing == []


def test_request_id_is_present_for_paths_no_function_serves(api: Api) -> None:
    response = api.call("GET", "/no/function/serves/this")

    assert response.status_code == 404
    assert response.headers.get("X-Request-Id")


def test_request_ids_are_unique_per_request(api: Api) -> None:
    seen = {api.call("GET", "/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(seen) == 5


def test_a_well_formed_request_id_is_echoed_and_a_bad_one_replaced(api: Api) -> None:
    echoed = api.call("GET", "/healthz", headers={"X-Request-Id": "client-abc.123_X"})
    replaced = api.call("GET", "/healthz", headers={"X-Request-Id": "bad id\u00e9"})

    assert echoed.headers["X-Request-Id"] == "client-abc.123_X"
    assert replaced.headers["X-Request-Id"]
    assert replaced.headers["X-Request-Id"] != "bad id\u00e9"
