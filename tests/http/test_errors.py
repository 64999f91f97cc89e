"""One table maps every error to a response; nothing internal reaches the client."""

from __future__ import annotations

from service.http.oauth import token_error
from service.store import ForeignKeyViolation
from tests.http.app import client

PROBLEM = "application/problem+json"


async def test_an_unknown_route_is_404_problem() -> None:
    """A path no route knows is an RFC 9457 problem with status 404."""
    async with client() as http:
        response = await http.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:authd:problem:not_found"


async def test_a_wrong_method_is_405_with_allow() -> None:
    """A known path with the wrong method is 405 and says which methods it takes."""
    async with client() as http:
        response = await http.delete("/items/1")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "GET" in response.headers["allow"]


async def test_a_typed_error_carries_its_status_and_headers() -> None:
    """InvalidClient answers 401 with its WWW-Authenticate challenge."""
    async with client() as http:
        response = await http.post("/oauth/client")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json() == {"error": "invalid_client", "error_description": "unknown client"}


async def test_storage_unavailable_is_503_with_retry_after() -> None:
    """A database outage is a 503 the client may retry, never a 500."""
    async with client() as http:
        response = await http.get("/storage")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:authd:problem:temporarily_unavailable"


async def test_a_constraint_violation_is_409_problem_never_500() -> None:
    """A unique or foreign-key violation no domain answered is a 409 conflict problem
    that names neither the table nor the column."""
    async with client() as http:
        response = await http.post("/constraint")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:authd:problem:conflict"
    assert "clients" not in response.text and "name" not in response.json()["detail"]


def test_a_token_endpoint_answers_a_constraint_violation_as_a_conflict() -> None:
    """The raw token endpoints turn a stray constraint violation into the same 409
    conflict (in RFC 6749 form), keeping the constraint for the log."""
    answer = token_error(ForeignKeyViolation("refresh_tokens", ("family_id",)))
    assert (answer.status, answer.code) == (409, "conflict")
    assert answer.log_detail is not None and "refresh_tokens" in answer.log_detail


async def test_a_crash_answers_a_generic_500_without_internals() -> None:
    """An unexpected exception is a problem body naming nothing internal."""
    async with client() as http:
        response = await http.get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "Traceback" not in response.text
    assert "/srv/secret/path" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_crash_on_an_oauth_path_is_rfc6749_server_error() -> None:
    """Under /oauth/ even the generic failure is ``{"error": "server_error"}``."""
    async with client() as http:
        response = await http.get("/oauth/crash")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
