"""The HTTP plumbing every function shares, through a Flask app as functions-framework runs it."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

import flask
import pytest
from google.api_core import exceptions as gexc
from pydantic import Field
from werkzeug.test import TestResponse

from shared.core import errors
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.core.settings import get_settings
from shared.schemas import Strict

LIMIT = 64 * 1024
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]


class ThingIn(Strict):
    name: str
    count: int
    tags: list[str] = []


class ThingQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=100)] = 20


router = Router()


@router.route("GET", "/v1/things/{thing_id}")
def get_thing(req: ApiRequest) -> ApiResponse:
    return json_response(200, {"id": req.params["thing_id"]}, ETag='"3"')


@router.route("PATCH", "/v1/things/{thing_id}")
def patch_thing(req: ApiRequest) -> ApiResponse:
    return json_response(200, {"id": req.params["thing_id"], "patched": True})


@router.route("POST", "/v1/things")
def create_thing(req: ApiRequest) -> ApiResponse:
    return json_response(201, req.json_body(ThingIn))


@router.route("GET", "/v1/things")
def list_things(req: ApiRequest) -> ApiResponse:
    return json_response(200, req.query(ThingQuery))


@router.route("GET", "/v1/boom")
def boom(req: ApiRequest) -> ApiResponse:
    raise RuntimeError("connection string postgres://admin:hunter2@db")


@router.route("GET", "/v1/down")
def down(req: ApiRequest) -> ApiResponse:
    raise gexc.ServiceUnavailable("firestore.googleapis.com unreachable at 10.1.2.3")


@router.route("GET", "/v1/private")
def private(req: ApiRequest) -> ApiResponse:
    raise errors.Unauthenticated("token expired")


@router.route("GET", "/v1/forbidden")
def forbidden(req: ApiRequest) -> ApiResponse:
    raise errors.Forbidden("not your event")


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    app = flask.Flask("unit-http")

    @app.route("/", defaults={"path": ""}, methods=METHODS)
    @app.route("/<path:path>", methods=METHODS)
    def entry(path: str) -> flask.Response:
        return router.handle(flask.request)

    return app.test_client()


@pytest.fixture
def cors(monkeypatch: pytest.MonkeyPatch) -> Any:
    def allow(origins: str) -> None:
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
        get_settings.cache_clear()

    return allow


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json(force=True)
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return dict(body)


# ---- routing ------------------------------------------------------------------------------


def test_route_template_captures_the_path_parameter(client: flask.testing.FlaskClient) -> None:
    response = client.get("/v1/things/abc_DEF-123")
    assert response.status_code == 200
    assert response.get_json() == {"id": "abc_DEF-123"}
    assert response.headers["ETag"] == '"3"'
    assert response.headers["Content-Type"] == "application/json"


def test_same_path_is_routed_by_method(client: flask.testing.FlaskClient) -> None:
    assert client.patch("/v1/things/t1").get_json() == {"id": "t1", "patched": True}


def test_trailing_slash_is_tolerated(client: flask.testing.FlaskClient) -> None:
    assert client.get("/v1/things/t1/").get_json() == {"id": "t1"}


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/things/a/b", "/v2/things/t1", "/v1/thingsX"])
def test_unknown_path_is_404_problem(client: flask.testing.FlaskClient, path: str) -> None:
    problem(client.get(path), 404, "not_found")


def test_known_path_with_another_method_is_405_problem_with_allow(client: flask.testing.FlaskClient) -> None:
    response = client.delete("/v1/things/t1")
    problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "PATCH"}


@pytest.mark.parametrize("thing_id", ["__name__", "__x__"])
def test_firestore_reserved_ids_are_not_routed(client: flask.testing.FlaskClient, thing_id: str) -> None:
    problem(client.get(f"/v1/things/{thing_id}"), 404, "not_found")


def test_every_router_answers_health_checks(client: flask.testing.FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("thing_id", ["a.b", "a%20b", "%2e%2e", "x" * 65, "a:b", "caf%C3%A9"])
def test_path_parameters_outside_the_safe_alphabet_are_not_routed(
    client: flask.testing.FlaskClient, thing_id: str
) -> None:
    problem(client.get(f"/v1/things/{thing_id}"), 404, "not_found")


def test_path_parameter_of_64_characters_is_routed(client: flask.testing.FlaskClient) -> None:
    assert client.get("/v1/things/" + "x" * 64).status_code == 200


# ---- bodies -------------------------------------------------------------------------------


def test_valid_json_body_is_parsed(client: flask.testing.FlaskClient) -> None:
    response = client.post("/v1/things", json={"name": "a", "count": 5})
    assert response.status_code == 201
    assert response.get_json() == {"name": "a", "count": 5, "tags": []}


def test_body_over_64_kib_with_content_length_is_413(client: flask.testing.FlaskClient) -> None:
    body = json.dumps({"name": "x" * LIMIT, "count": 1})
    problem(client.post("/v1/things", data=body, content_type="application/json"), 413, "payload_too_large")


def test_chunked_body_over_64_kib_is_413(client: flask.testing.FlaskClient) -> None:
    body = json.dumps({"name": "x" * LIMIT, "count": 1}).encode()
    response = client.post(
        "/v1/things",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    problem(response, 413, "payload_too_large")


def test_chunked_body_within_the_limit_is_read(client: flask.testing.FlaskClient) -> None:
    body = json.dumps({"name": "x" * 1000, "count": 1}).encode()
    response = client.post(
        "/v1/things",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201


def test_body_of_exactly_64_kib_is_accepted(client: flask.testing.FlaskClient) -> None:
    skeleton = json.dumps({"name": "", "count": 1})
    body = json.dumps({"name": "x" * (LIMIT - len(skeleton)), "count": 1})
    assert len(body) == LIMIT
    assert client.post("/v1/things", data=body, content_type="application/json").status_code == 201


@pytest.mark.parametrize("body", ["{", "not json", '{"name": "a", "count": 1,}', "[1, 2]"])
def test_malformed_json_is_422_with_errors(client: flask.testing.FlaskClient, body: str) -> None:
    found = problem(client.post("/v1/things", data=body, content_type="application/json"), 422, "validation_error")
    assert isinstance(found["errors"], list)
    assert found["errors"]


def test_empty_body_is_422(client: flask.testing.FlaskClient) -> None:
    found = problem(client.post("/v1/things", data=""), 422, "validation_error")
    assert found["errors"]


@pytest.mark.parametrize(("field", "value"), [("count", "5"), ("count", 5.5), ("count", True), ("name", 5)])
def test_wrong_json_types_are_refused_not_coerced(client: flask.testing.FlaskClient, field: str, value: Any) -> None:
    body = {"name": "a", "count": 5, field: value}
    found = problem(client.post("/v1/things", json=body), 422, "validation_error")
    assert [e["field"] for e in found["errors"]] == [field]


def test_unknown_fields_are_refused(client: flask.testing.FlaskClient) -> None:
    found = problem(client.post("/v1/things", json={"name": "a", "count": 1, "admin": True}), 422, "validation_error")
    assert found["errors"][0]["field"] == "admin"


def test_missing_field_is_named(client: flask.testing.FlaskClient) -> None:
    found = problem(client.post("/v1/things", json={"name": "a"}), 422, "validation_error")
    assert found["errors"][0]["field"] == "count"


def test_validation_errors_do_not_echo_the_input(client: flask.testing.FlaskClient) -> None:
    response = client.post("/v1/things", json={"name": "a", "count": "sk_test_secret_value"})
    assert "sk_test_secret_value" not in response.get_data(as_text=True)


def test_query_strings_are_converted_and_validated(client: flask.testing.FlaskClient) -> None:
    assert client.get("/v1/things?limit=5").get_json() == {"limit": 5}
    problem(client.get("/v1/things?limit=0"), 422, "validation_error")
    problem(client.get("/v1/things?limit=abc"), 422, "validation_error")
    problem(client.get("/v1/things?unknown=1"), 422, "validation_error")


def test_repeated_query_parameter_is_refused(client: flask.testing.FlaskClient) -> None:
    found = problem(client.get("/v1/things?limit=5&limit=6"), 422, "validation_error")
    assert found["errors"][0]["field"] == "limit"


# ---- errors -------------------------------------------------------------------------------


def test_app_errors_become_their_problem(client: flask.testing.FlaskClient) -> None:
    found = problem(client.get("/v1/forbidden"), 403, "forbidden")
    assert found["detail"] == "not your event"
    assert found["type"] == "urn:problem:forbidden"
    assert found["instance"] == "/v1/forbidden"


def test_unauthenticated_asks_for_a_bearer_token(client: flask.testing.FlaskClient) -> None:
    response = client.get("/v1/private")
    problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unexpected_exception_is_500_without_internals(client: flask.testing.FlaskClient) -> None:
    response = client.get("/v1/boom")
    found = problem(response, 500, "internal")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    assert found["detail"] == "Internal error"


def test_unavailable_dependency_is_503_with_retry_after(client: flask.testing.FlaskClient) -> None:
    response = client.get("/v1/down")
    problem(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert "10.1.2.3" not in response.get_data(as_text=True)


# ---- request ids --------------------------------------------------------------------------


def test_request_id_is_echoed(client: flask.testing.FlaskClient) -> None:
    assert client.get("/v1/things/t1", headers={"X-Request-Id": "abc-123.x_y"}).headers["X-Request-Id"] == "abc-123.x_y"


@pytest.mark.parametrize("supplied", [None, "", "has space", "a" * 129, "<script>"])
def test_request_id_is_generated_when_missing_or_unsafe(
    client: flask.testing.FlaskClient, supplied: str | None
) -> None:
    headers = {"X-Request-Id": supplied} if supplied is not None else {}
    first = client.get("/v1/things/t1", headers=headers).headers["X-Request-Id"]
    second = client.get("/v1/things/t1", headers=headers).headers["X-Request-Id"]
    assert first != second
    assert first != supplied


def test_problems_carry_the_request_id_too(client: flask.testing.FlaskClient) -> None:
    assert client.get("/v1/boom", headers={"X-Request-Id": "rid-1"}).headers["X-Request-Id"] == "rid-1"


# ---- CORS ---------------------------------------------------------------------------------


def test_allowed_origin_is_echoed_with_vary_and_exposed_headers(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("https://app.example, https://admin.example")
    response = client.get("/v1/things/t1", headers={"Origin": "https://admin.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    assert "Origin" in response.headers.get_all("Vary")
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Retry-After"} <= exposed


def test_errors_carry_cors_headers_for_an_allowed_origin(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("https://app.example")
    response = client.get("/v1/nothing", headers={"Origin": "https://app.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


@pytest.mark.parametrize("configured", ["", "https://app.example"])
def test_other_origins_get_no_cors_headers(client: flask.testing.FlaskClient, cors: Any, configured: str) -> None:
    cors(configured)
    response = client.get("/v1/things/t1", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]


def test_preflight_is_answered_without_auth(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("https://app.example")
    response = client.options(
        "/v1/things/t1",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, if-match",
        },
    )
    assert response.status_code == 204
    assert response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PATCH"} <= methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed


def test_preflight_from_another_origin_gets_no_permission(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("https://app.example")
    response = client.options("/v1/things/t1", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


def test_wildcard_origin_never_allows_credentials(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("*")
    for response in (
        client.get("/v1/things/t1", headers={"Origin": "https://any.example"}),
        client.options("/v1/things/t1", headers={"Origin": "https://any.example"}),
    ):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_no_origin_header_means_no_cors_headers(client: flask.testing.FlaskClient, cors: Any) -> None:
    cors("*")
    assert "Access-Control-Allow-Origin" not in client.get("/v1/things/t1").headers
