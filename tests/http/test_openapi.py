"""The OpenAPI document describes exactly the routes the application serves, and
is internally consistent (every reference resolves, every path parameter is declared)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from service.app import all_routes
from service.http.openapi import document
from tests.support.servers import Server

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def app_operations() -> set[tuple[str, str]]:
    """(path template, method) of every route, Starlette converters dropped."""
    found: set[tuple[str, str]] = set()
    for route in all_routes():
        assert isinstance(route, Route), route
        if not route.include_in_schema:  # the console's HTML pages (service/console)
            continue
        path = _CONVERTER.sub(r"{\1}", route.path)
        for method in route.methods or set():
            if method != "HEAD":  # Starlette adds HEAD to every GET route
                found.add((path, method.lower()))
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items()
            for method in item if method in METHODS}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield str(value)
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_route_is_documented() -> None:
    """No route of the application is missing from the document."""
    assert app_operations() - documented_operations() == set()


def test_nothing_undocumented_is_described() -> None:
    """The document describes no path or method the application does not serve."""
    assert documented_operations() - app_operations() == set()


def test_it_is_openapi_3_1() -> None:
    """The document declares OpenAPI 3.1 with a title and version."""
    spec = document()
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] == "authd" and spec["info"]["version"]


def test_every_reference_resolves() -> None:
    """Each $ref names a schema that exists in components."""
    spec = document()
    names = set(spec["components"]["schemas"])
    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in names, ref


def test_path_parameters_are_declared() -> None:
    """Each {param} of a path is a required path parameter of each of its operations."""
    for path, item in document()["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", [])
                        if p["in"] == "path" and p["required"]}
            assert declared == wanted, (path, method)


def test_every_operation_answers_something_and_admin_ones_need_credentials() -> None:
    """Every operation lists responses; every /admin operation requires a credential."""
    spec = document()
    schemes = set(spec["components"]["securitySchemes"])
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)
            for requirement in operation.get("security", []):
                assert set(requirement) <= schemes
            if path.startswith("/admin/"):
                assert operation["security"] and {} not in operation["security"]


@pytest.mark.e2e
def test_the_document_is_served_at_openapi_json(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """GET /openapi.json on a running server returns this document as JSON."""
    server = start_server(server_env)
    response = httpx.get(f"{server.base_url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == document()
