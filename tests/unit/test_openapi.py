"""The OpenAPI document describes every public route the functions serve, and nothing they do not."""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.openapi import document

ROUTES_FILE = Path(__file__).resolve().parents[2] / "functions" / "routes.json"
METHODS = {"get", "post", "patch", "put", "delete"}


def deployed_public_functions() -> list[dict[str, Any]]:
    """What the load balancer routes: neither internal (IAM-only) nor local-only tooling."""
    functions = json.loads(ROUTES_FILE.read_text())["functions"]
    return [f for f in functions if not f.get("internal") and not f.get("local_only")]


def template(pattern: str) -> str:
    """The path template a Router compiled: `^/v1/events/(?P<event_id>...)/?$` -> `/v1/events/{event_id}`."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    return path.removeprefix("^").removesuffix("$").removesuffix("/?")


def routes_of(module_name: str) -> set[tuple[str, str]]:
    """(method, path template) of every route a function module's router serves."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        module = importlib.import_module(f"functions.{module_name}")
    finally:  # importing configures logging for a real process; keep pytest's
        root.handlers, root.level = saved[0], saved[1]
    return {(m.lower(), template(pattern.pattern)) for pattern, methods in module.router._routes for m in methods}


@pytest.fixture
def served(unit_settings: None) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for function in deployed_public_functions():
        routes |= routes_of(function["source"].removesuffix(".py"))
    return routes


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document(include_dev=False)


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    return dict(doc["components"]["schemas"][ref.rsplit("/", 1)[1]])


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def test_template_reading_matches_the_router() -> None:
    assert template(r"^/v1/events/(?P<event_id>[A-Za-z0-9_-]{1,64})/bookings/?$") == "/v1/events/{event_id}/bookings"


def test_document_is_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def test_every_public_route_is_documented(doc: dict[str, Any], served: set[tuple[str, str]]) -> None:
    assert served, "no routes found"
    assert sorted(served - documented(doc)) == []


def test_every_documented_operation_is_served(doc: dict[str, Any], served: set[tuple[str, str]]) -> None:
    assert sorted(documented(doc) - served) == []


def test_local_identity_provider_is_documented_only_locally(doc: dict[str, Any], unit_settings: None) -> None:
    dev_routes = routes_of("devauth")
    assert dev_routes
    assert sorted(dev_routes - documented(document(include_dev=True))) == []
    assert not dev_routes & documented(doc)


@pytest.mark.parametrize("include_dev", [False, True])
def test_request_bodies_refuse_unknown_fields_at_every_level(include_dev: bool) -> None:
    doc = document(include_dev=include_dev)
    checked = set()
    pending = [
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for item in doc["paths"].values()
        for op in item.values()
        if "requestBody" in op
    ]
    assert pending
    while pending:
        ref = pending.pop()
        if ref in checked:
            continue
        checked.add(ref)
        schema = resolve(doc, ref)
        assert schema.get("additionalProperties") is False, ref
        pending.extend(refs_in(schema))
    assert {"#/components/schemas/UserIn", "#/components/schemas/CompanyIn"} <= checked


def test_problem_schema_is_present_and_used_for_errors(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            # 414 is answered by the HTTP server before the application, in its own format
            errors = {status: r for status, r in op["responses"].items() if int(status) >= 400 and status != "414"}
            assert "422" in errors, (method, path)
            for response in errors.values():
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    for ref in set(refs_in(doc)):
        assert resolve(doc, ref)


def test_path_parameters_are_declared_with_the_router_alphabet(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for op in item.values():
            declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
            assert set(declared) == names, path
            for parameter in declared.values():
                assert parameter["required"] is True
                assert parameter["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"


def test_search_parameters_use_their_public_names(doc: dict[str, Any]) -> None:
    params = {p["name"] for p in doc["paths"]["/v1/events"]["get"]["parameters"]}
    assert {"q", "from", "to", "lat", "lng", "radius_km", "limit", "page_token"} <= params
    assert "from_" not in params


def test_authentication_is_declared_per_operation(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert paths["/v1/users/me"]["get"]["security"] == [{"bearer": []}]
    assert "401" in paths["/v1/users/me"]["get"]["responses"]
    assert "security" not in paths["/v1/events"]["get"]
    assert {} in paths["/v1/events/{event_id}"]["get"]["security"]


def test_event_update_documents_if_match_and_its_failures(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/v1/events/{event_id}"]["patch"]
    assert "If-Match" in {p["name"] for p in op["parameters"] if p["in"] == "header"}
    assert {"412", "428"} <= set(op["responses"])


def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_link_names_an_operation_and_its_path_parameters(doc: dict[str, Any]) -> None:
    operations = {op["operationId"]: (path, op) for path, item in doc["paths"].items() for op in item.values()}
    links = [
        link
        for item in doc["paths"].values()
        for op in item.values()
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 10
    for link in links:
        path, _ = operations[link["operationId"]]
        wanted = {f"path.{name}" for name in re.findall(r"\{(\w+)\}", path)}
        assert wanted <= set(link["parameters"]), link
