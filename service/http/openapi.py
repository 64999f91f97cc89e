"""The OpenAPI 3.1 description of every public and admin endpoint, served at
``GET /openapi.json``.

Written by hand next to the handlers rather than generated from them: the handlers
are thin ASGI callables and Starlette views that parse strictly by hand, so there
is nothing to introspect. ``tests/http/test_openapi.py`` keeps it true by comparing
its paths and methods with the application's routes, and ``make fuzz`` runs
schemathesis against a live server, which checks every response against it.

Error shapes follow service/http/errors.py: ``/oauth/*`` (and ``/v1/token``) answer
RFC 6749 §5.2 JSON, every other path RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Schema = dict[str, Any]

JSON = "application/json"
PROBLEM = "application/problem+json"
FORM = "application/x-www-form-urlencoded"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: Schema, media: str = JSON) -> Schema:
    return {media: {"schema": schema}}


def _ok(description: str, schema: Schema | None = None, media: str = JSON,
        headers: Schema | None = None) -> Schema:
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = _content(schema, media)
    if headers:
        response["headers"] = headers
    return response


# The CSRF rule of service/http/csrf.py, as a client developer needs to know it.
_COOKIE_RULE = (
    "A request whose only credential is the `authd_refresh` cookie must send an "
    "`application/json` body (`{}` will do) and an `Origin` (or `Referer`) that is the "
    "issuer's origin or one of `AUTHD_CORS_ORIGINS`; otherwise it is refused with 403 "
    "`cross_site_request` and changes nothing."
)


def _problems(*, unavailable: bool = True) -> Schema:
    """Every client error of a non-OAuth path, and 503 when storage is down."""
    responses: Schema = {
        "4XX": {"description": "the request was refused (RFC 9457 problem)",
                "content": _content(_ref("Problem"), PROBLEM)},
    }
    if unavailable:
        responses["503"] = {"description": "a dependency is unavailable; retry later",
                            "content": _content(_ref("Problem"), PROBLEM)}
    return responses


def _oauth_errors() -> Schema:
    return {
        "4XX": {"description": "RFC 6749 §5.2 error; 401 carries WWW-Authenticate",
                "content": _content(_ref("OAuthError"))},
        "503": {"description": "temporarily unavailable; retry later",
                "content": _content(_ref("OAuthError"))},
    }


def _token_errors() -> Schema:
    """``/v1/token`` answers like the OAuth endpoint, except a body over the size
    limit, which the shared middleware refuses as a problem before routing."""
    both = {JSON: {"schema": _ref("OAuthError")}, PROBLEM: {"schema": _ref("Problem")}}
    return {
        "4XX": {"description": "refused; 401 carries WWW-Authenticate", "content": both},
        "503": {"description": "temporarily unavailable; retry later", "content": both},
    }


ADMIN: list[Schema] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
NO_STORE = {"Cache-Control": {"schema": {"type": "string"}, "description": "no-store"}}


def _admin(summary: str, responses: Schema, *, body: Schema | None = None,
           params: list[Schema] | None = None, required_body: bool = True) -> Schema:
    operation: Schema = {
        "tags": ["admin"], "summary": summary, "security": ADMIN,
        "description": "Requires the `authd:admin` scope (access token or API key).",
        "responses": {**responses, **_problems()},
    }
    if body is not None:
        operation["requestBody"] = {"required": required_body, "content": _content(body)}
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


_SCOPE_TOKEN = {"type": "string", "pattern": "^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$"}
SCOPES = {"oneOf": [{"type": "string"}, {"type": "array", "items": _SCOPE_TOKEN}],
          "description": "space-separated string or list of RFC 6749 §3.3 scope tokens"}
DURATION = {"oneOf": [{"type": "string", "examples": ["90d", "24h"]}, {"type": "number"}],
            "description": "a duration such as 90d, 24h, 15m, or seconds"}
TIME = {"type": ["number", "null"], "description": "Unix seconds"}

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                       "status": {"type": "integer"}, "detail": {"type": "string"}},
        "description": "RFC 9457 problem details; some problems add members "
                       "(readiness `checks`, `mfa_ticket`).",
    },
    "OAuthError": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
    "TokenResponse": {
        "type": "object", "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string", "description": "RS256 JWT (RFC 9068)"},
            "token_type": {"enum": ["Bearer", "DPoP"],
                           "description": "DPoP when a DPoP proof bound the token (RFC 9449)"},
            "expires_in": {"type": "integer", "minimum": 0},
            "scope": {"type": "string"},
            "issued_token_type": {"type": "string",
                                  "description": "token exchange only (RFC 8693 §2.2.1)"},
            "refresh_token": {"type": "string"},
            "refresh_token_expires_in": {"type": "integer", "minimum": 0},
        },
    },
    "Jwks": {
        "type": "object", "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {
            "type": "object", "required": ["kty", "kid"],
            "properties": {"kty": {"type": "string"}, "kid": {"type": "string"},
                           "use": {"type": "string"}, "alg": {"type": "string"},
                           "n": {"type": "string"}, "e": {"type": "string"},
                           # ES256 (EC P-256) and EdDSA (OKP Ed25519) keys, issue 16.
                           "crv": {"type": "string"}, "x": {"type": "string"},
                           "y": {"type": "string"}},
        }}},
    },
    "Metadata": {
        "type": "object", "required": ["issuer", "token_endpoint", "jwks_uri"],
        "properties": {"issuer": {"type": "string"}, "token_endpoint": {"type": "string"},
                       "jwks_uri": {"type": "string"}},
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    "Ready": {
        "type": "object", "required": ["status", "checks"],
        "properties": {"status": {"const": "ready"},
                       "checks": {"type": "object",
                                  "additionalProperties": {"type": "string"}}},
    },
    "Introspection": {
        "type": "object", "required": ["active"],
        "properties": {"active": {"type": "boolean"}, "scope": {"type": "string"},
                       "client_id": {"type": "string"}, "sub": {"type": "string"},
                       "exp": {"type": "integer"}, "iat": {"type": "integer"},
                       "token_type": {"type": "string"}},
    },
    "RevocationFeed": {
        "type": "object", "required": ["entries", "cursor"],
        "properties": {
            "cursor": {"type": "string", "description": "send as `since` next time"},
            "entries": {"type": "array", "items": {
                "type": "object", "required": ["kind", "value", "expires_at"],
                "properties": {"kind": {"enum": ["jti", "sid", "sub"]},
                               "value": {"type": "string"},
                               "not_before": {"type": ["integer", "null"]},
                               "expires_at": {"type": "integer"}},
            }},
        },
    },
    "SubjectRevocation": {
        "type": "object", "required": ["sub", "not_before", "expires_at"],
        "properties": {"sub": {"type": "string"}, "not_before": {"type": "integer"},
                       "expires_at": {"type": "integer"}},
    },
    "SigningKey": {
        "type": "object", "required": ["kid", "alg", "state"],
        "properties": {"kid": {"type": "string"}, "alg": {"type": "string"},
                       "state": {"enum": ["next", "active", "retired", "revoked", "erased"]},
                       "created_at": TIME, "activated_at": TIME, "retired_at": TIME,
                       "revoked_at": TIME, "erased_at": TIME},
    },
    "KeyChange": {
        "type": "object", "required": ["action"],
        "properties": {"action": {"type": "string"},
                       "active": {"type": ["string", "null"]},
                       "next": {"type": ["string", "null"]},
                       "retired": {"type": ["string", "null"]},
                       "revoked": {"type": ["string", "null"]},
                       "erased": {"type": "array", "items": {"type": "string"}}},
    },
    "Client": {
        "type": "object", "required": ["id", "name", "scopes", "status"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "scopes": {"type": "array", "items": {"type": "string"}},
                       "audiences": {"type": "array", "items": {"type": "string"}},
                       "token_ttl": {"type": ["number", "null"]},
                       "status": {"type": "string"}, "created_at": TIME, "updated_at": TIME,
                       "exchange_audiences": {"type": "array", "items": {"type": "string"}},
                       "dpop_required": {"type": "boolean"}},
    },
    "ApiKey": {
        "type": "object", "required": ["id", "client_id", "display", "status"],
        "properties": {"id": {"type": "string"}, "client_id": {"type": "string"},
                       "display": {"type": "string", "description": "prefix, never the key"},
                       "scopes": {"type": "array", "items": {"type": "string"}},
                       "rate_limit": {"type": ["string", "null"]},
                       "status": {"type": "string"}, "expires_at": TIME,
                       "last_used_at": TIME, "replaces": {"type": ["string", "null"]},
                       "created_at": TIME, "revoked_at": TIME},
    },
    "IssuedApiKey": {
        "allOf": [_ref("ApiKey"), {
            "type": "object", "required": ["api_key"],
            "properties": {"api_key": {"type": "string",
                                       "description": "shown in this answer only"}},
        }],
    },
    "User": {
        "type": "object", "required": ["id", "email", "status"],
        "properties": {"id": {"type": "string"}, "email": {"type": "string"},
                       "status": {"type": "string"}, "failed_logins": {"type": "integer"},
                       "locked_until": TIME, "created_at": TIME},
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "at", "action", "outcome", "actor", "subject", "ip", "details"],
        "properties": {"id": {"type": "integer"}, "at": {"type": "number"},
                       "action": {"type": "string"}, "outcome": {"type": "string"},
                       "actor": {"type": ["string", "null"]},
                       "subject": {"type": ["string", "null"]},
                       "ip": {"type": ["string", "null"]}, "details": {"type": "object"}},
    },
    "MfaRequired": {
        "allOf": [_ref("Problem"), {
            "type": "object",
            "required": ["type", "mfa_ticket", "expires_in", "methods"],
            "properties": {
                "type": {"const": "urn:authd:problem:mfa_required"},
                "status": {"const": 401},
                "mfa_ticket": {"type": "string", "pattern": "^mt_[A-Za-z0-9_-]{43}$",
                               "description": "single use; send to POST /v1/login/mfa"},
                "expires_in": {"type": "integer", "minimum": 0,
                               "description": "seconds the ticket stays valid (300)"},
                "methods": {"type": "array", "minItems": 1, "items": {
                    "enum": ["otp", "recovery_code"]}},
            },
        }],
        "description": "the password was right; a second factor is required",
    },
    "MfaStatus": {
        "type": "object",
        "required": ["user_id", "totp", "activated_at", "recovery_codes_left"],
        "properties": {"user_id": {"type": "string"},
                       "totp": {"enum": ["none", "pending", "active"]},
                       "activated_at": TIME,
                       "recovery_codes_left": {"type": "integer", "minimum": 0}},
    },
    "TotpEnrolment": {
        "type": "object",
        "required": ["secret", "otpauth_uri", "state", "digits", "period", "algorithm"],
        "properties": {"secret": {"type": "string", "description": "base32; shown once"},
                       "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"},
                       "state": {"const": "pending"}, "digits": {"type": "integer"},
                       "period": {"type": "integer"}, "algorithm": {"const": "SHA1"}},
    },
    "RecoveryCodes": {
        "type": "object", "required": ["recovery_codes"],
        "properties": {"recovery_codes": {
            "type": "array", "items": {"type": "string"},
            "description": "shown in this answer only; each works once"}},
    },
    "LoginRecord": {
        "type": "object", "required": ["at", "ip", "network", "device", "amr", "reasons"],
        "properties": {"at": {"type": "number"}, "ip": {"type": "string"},
                       "network": {"type": "string"}, "device": {"type": "string"},
                       "amr": {"type": "array", "items": {"type": "string"}},
                       "reasons": {"type": "array", "items": {"type": "string"}}},
    },
    "LoginAnomaly": {
        "type": "object",
        "required": ["at", "ip", "outcome", "reasons", "network", "device"],
        "properties": {"at": {"type": "number"}, "ip": {"type": ["string", "null"]},
                       "outcome": {"type": "string"},
                       "reasons": {"type": "array", "items": {"type": "string"}},
                       "network": {"type": ["string", "null"]},
                       "device": {"type": ["string", "null"]}},
    },
    "KeyNetworks": {
        "type": "object", "required": ["key_id", "allowed_cidrs", "networks"],
        "properties": {
            "key_id": {"type": "string"},
            "allowed_cidrs": {"type": ["array", "null"], "items": {"type": "string"},
                              "description": "null: usable from anywhere"},
            "networks": {"type": "array", "items": {
                "type": "object", "required": ["network", "first_seen", "last_seen"],
                "properties": {"network": {"type": "string"},
                               "first_seen": {"type": "number"},
                               "last_seen": {"type": "number"}}}},
        },
    },
}

_TOKEN_FORM: Schema = {
    "type": "object", "required": ["grant_type"],
    "properties": {
        "grant_type": {"enum": ["client_credentials", "refresh_token",
                                "urn:ietf:params:oauth:grant-type:token-exchange"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string", "description": "one of the client's API keys "
                                                           "(client_secret_post)"},
        "refresh_token": {"type": "string"},
        "scope": {"type": "string"},
        "audience": {"type": "string"},
        "resource": {"type": "string"},
        "subject_token": {"type": "string", "description": "token exchange (RFC 8693)"},
        "subject_token_type": {"type": "string"},
        "requested_token_type": {"type": "string"},
    },
}
_TOKEN_PARAMS: Schema = {"type": "object", "properties": {
    "scope": {"type": "string"}, "audience": {"type": "string"}, "resource": {"type": "string"},
}}
_TOKEN_FORM_REVOKE: Schema = {
    "type": "object", "required": ["token"],
    "properties": {"token": {"type": "string"},
                   "token_type_hint": {"enum": ["access_token", "refresh_token"]},
                   "client_id": {"type": "string"}, "client_secret": {"type": "string"}},
}
_REFRESH_BODY: Schema = {"type": "object", "additionalProperties": False,
                         "properties": {"refresh_token": {"type": "string"}}}
_OPERATOR: Schema = {
    "type": "object", "required": ["id", "email", "roles"],
    "properties": {"id": {"type": "string"}, "email": {"type": "string"},
                   "roles": {"type": "array", "items": {"type": "string", "enum": ["admin"]}}},
}
_CREDENTIALS: Schema = {
    "type": "object", "required": ["email", "password"], "additionalProperties": False,
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "password": {"type": "string", "minLength": 8,
                     "description": "8 characters or more; at most AUTHD_PASSWORD_MAX_BYTES "
                                    "bytes of UTF-8"},
    },
}
_TOKEN_OK = _ok("a token (RFC 6749 §5.1)", _ref("TokenResponse"), headers=NO_STORE)
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"schema": {"type": "string"}}}
_LOGIN_401 = {
    "description": "a second factor is required (`urn:authd:problem:mfa_required`, "
                   "with `mfa_ticket`, `expires_in`, `methods`), or the credentials "
                   "were refused",
    "headers": _WWW_AUTHENTICATE,
    "content": _content({"anyOf": [_ref("MfaRequired"), _ref("Problem")]}, PROBLEM),
}
_CODE: Schema = {"type": "string", "description": "the current 6-digit TOTP code"}
_RECOVERY_CODE: Schema = {"type": "string", "description": "one unused recovery code"}
_ONE_CODE: Schema = {"oneOf": [
    {"type": "object", "required": ["code"], "additionalProperties": False,
     "properties": {"code": _CODE}},
    {"type": "object", "required": ["recovery_code"], "additionalProperties": False,
     "properties": {"recovery_code": _RECOVERY_CODE}},
], "description": "exactly one of code and recovery_code"}
_CODE_ONLY: Schema = {"type": "object", "required": ["code"], "additionalProperties": False,
                      "properties": {"code": _CODE}}
_MFA_LOGIN: Schema = {"oneOf": [
    {"type": "object", "required": ["mfa_ticket", "code"], "additionalProperties": False,
     "properties": {"mfa_ticket": {"type": "string"}, "code": _CODE}},
    {"type": "object", "required": ["mfa_ticket", "recovery_code"],
     "additionalProperties": False,
     "properties": {"mfa_ticket": {"type": "string"}, "recovery_code": _RECOVERY_CODE}},
], "description": "the ticket of the mfa_required answer and exactly one of code and "
                  "recovery_code"}
USER: list[Schema] = [{"bearerAuth": []}]


def _user_op(summary: str, responses: Schema, *, body: Schema | None = None) -> Schema:
    """An operation on the signed-in user's own factors: a login access token."""
    operation: Schema = {
        "tags": ["mfa"], "summary": summary, "security": USER,
        "description": "Requires the user's own login access token (`Authorization: "
                       "Bearer`, a token with a `sid`); a client's token is refused "
                       "with 403 `user_token_required`. Failed codes count against the "
                       "user and the address (429 when over budget) and towards the "
                       "account lockout.",
        "responses": {**responses, **_problems()},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _content(body)}
    return operation


_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}}

PATHS: dict[str, Schema] = {
    "/healthz": {"get": {"tags": ["operations"], "summary": "liveness",
                         "responses": {"200": _ok("the process answers", _ref("Health"))}}},
    "/readyz": {"get": {"tags": ["operations"], "summary": "readiness",
                        "responses": {
                            "200": _ok("every dependency answers", _ref("Ready")),
                            "503": _ok("a dependency is down; `checks` names it",
                                       _ref("Problem"), PROBLEM)}}},
    "/metrics": {"get": {"tags": ["operations"], "summary": "Prometheus exposition",
                         "responses": {"200": _ok("text exposition format 0.0.4",
                                                  {"type": "string"}, "text/plain")}}},
    "/openapi.json": {"get": {"tags": ["operations"], "summary": "this document",
                              "responses": {"200": _ok("OpenAPI 3.1", {"type": "object"})}}},
    "/.well-known/jwks.json": {"get": {
        "tags": ["public"], "summary": "published public keys (RFC 7517)",
        "parameters": [{"name": "If-None-Match", "in": "header", "required": False,
                        "schema": {"type": "string"}}],
        "responses": {"200": _ok("the JWKS; ETag and Cache-Control max-age", _ref("Jwks")),
                      "304": {"description": "unchanged since the given ETag"}},
    }},
    "/.well-known/oauth-authorization-server": {"get": {
        "tags": ["public"], "summary": "authorization server metadata (RFC 8414)",
        "responses": {"200": _ok("the metadata", _ref("Metadata"))},
    }},
    "/oauth/token": {"post": {
        "tags": ["public"], "summary": "token endpoint (RFC 6749 §3.2)",
        "description": "`client_credentials` (client_secret_basic or client_secret_post, "
                       "the secret being one of the client's API keys) and "
                       "`refresh_token`, and RFC 8693 token exchange (delegation: the "
                       "caller authenticates as for client_credentials). A `DPoP` proof "
                       "header (RFC 9449) binds the issued token. The password grant is "
                       "not offered.",
        "security": [{}, {"clientBasic": []}],
        "requestBody": {"required": True, "content": _content(_TOKEN_FORM, FORM)},
        "responses": {"200": _TOKEN_OK, **_oauth_errors()},
    }},
    "/v1/token": {"post": {
        "tags": ["public"], "summary": "exchange an API key for an access token",
        "security": [{"apiKeyHeader": []}],
        "requestBody": {"required": False, "content": {
            FORM: {"schema": _TOKEN_PARAMS}, JSON: {"schema": _TOKEN_PARAMS}}},
        "responses": {"200": _TOKEN_OK, **_token_errors()},
    }},
    "/v1/login": {"post": {
        "tags": ["public"], "summary": "email + password → access and refresh token",
        "description": "An MFA-enrolled user gets 401 `mfa_required` with a ticket "
                       "for `POST /v1/login/mfa` (under `AUTHD_ANOMALY_POLICY=step_up` "
                       "only when the login is unfamiliar).",
        "requestBody": {"required": True, "content": _content(_CREDENTIALS)},
        "responses": {"200": _TOKEN_OK, "401": _LOGIN_401, **_problems()},
    }},
    "/v1/login/mfa": {"post": {
        "tags": ["public", "mfa"], "summary": "a login's second step: ticket + TOTP or "
                                              "recovery code → tokens",
        "description": "Every failure (unknown, expired or spent ticket, wrong code, "
                       "locked account) is the same 401 `mfa_rejected`.",
        "requestBody": {"required": True, "content": _content(_MFA_LOGIN)},
        "responses": {"200": _TOKEN_OK,
                      "401": {"description": "the ticket or code is invalid, expired or "
                                             "already used (`mfa_rejected`)",
                              "headers": _WWW_AUTHENTICATE,
                              "content": _content(_ref("Problem"), PROBLEM)},
                      **_problems()},
    }},
    "/v1/mfa": {"get": _user_op("the signed-in user's MFA state",
                                {"200": _ok("the state", _ref("MfaStatus"), headers=NO_STORE)})},
    "/v1/mfa/totp/enroll": {"post": _user_op(
        "start (or restart) a TOTP enrolment; 409 when one is active",
        {"200": _ok("the secret, shown once; pending until verified", _ref("TotpEnrolment"),
                    headers=NO_STORE)})},
    "/v1/mfa/totp/verify": {"post": _user_op(
        "complete a pending enrolment (→ the recovery codes, shown once) or check a code",
        {"200": _ok("active", {"oneOf": [
            {"type": "object", "required": ["state", "recovery_codes"],
             "properties": {"state": {"const": "active"},
                            "recovery_codes": {"type": "array", "items": {"type": "string"}}}},
            {"type": "object", "required": ["state", "verified"],
             "properties": {"state": {"const": "active"}, "verified": {"const": True}}},
        ]}, headers=NO_STORE)}, body=_CODE_ONLY)},
    "/v1/mfa/totp/disable": {"post": _user_op(
        "turn TOTP off, proving the factor once more (409 when not enrolled)",
        {"204": {"description": "TOTP and the recovery codes are removed"}}, body=_ONE_CODE)},
    "/v1/mfa/recovery-codes": {"post": _user_op(
        "ten new recovery codes for a current TOTP code; the old ones stop working",
        {"200": _ok("the new codes", _ref("RecoveryCodes"), headers=NO_STORE)},
        body=_CODE_ONLY)},
    "/v1/refresh": {"post": {
        "tags": ["public"], "summary": "rotate a refresh token (body or cookie)",
        "description": _COOKIE_RULE,
        "requestBody": {"required": False, "content": _content(_REFRESH_BODY)},
        "responses": {"200": _TOKEN_OK, **_problems()},
    }},
    "/v1/logout": {"post": {
        "tags": ["public"], "summary": "revoke the session of a refresh or access token",
        "description": _COOKIE_RULE,
        "security": [{}, {"bearerAuth": []}],
        "requestBody": {"required": False, "content": _content(_REFRESH_BODY)},
        "responses": {"204": {"description": "the session is revoked (or was unknown)"},
                      **_problems()},
    }},
    "/oauth/revoke": {"post": {
        "tags": ["public"], "summary": "revoke a token (RFC 7009)",
        "security": [{}, {"clientBasic": []}, {"apiKeyHeader": []}],
        "requestBody": {"required": True, "content": _content(_TOKEN_FORM_REVOKE, FORM)},
        "responses": {"200": {"description": "revoked, or unknown (RFC 7009 §2.2)"},
                      **_oauth_errors()},
    }},
    "/oauth/introspect": {"post": {
        "tags": ["public"], "summary": "token introspection (RFC 7662)",
        "description": "Requires the `authd:introspect` scope. The caller authenticates "
                       "as a client (client_secret_basic, or client_id + client_secret "
                       "in the form: RFC 7662 §2.1), or with a Bearer token or API key "
                       "holding the scope.",
        "security": [{"clientBasic": []}, {}, *ADMIN],
        "requestBody": {"required": True, "content": _content(_TOKEN_FORM_REVOKE, FORM)},
        "responses": {"200": _ok("the token's state", _ref("Introspection")),
                      **_oauth_errors()},
    }},
    "/v1/revocations": {"get": {
        "tags": ["public"], "summary": "revocation feed for verifiers",
        "parameters": [
            {"name": "since", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "a cursor from a previous answer"},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        ],
        "responses": {"200": _ok("entries after the cursor", _ref("RevocationFeed")),
                      **_problems()},
    }},
    "/admin/keys": {"get": _admin("list signing keys", {
        "200": _ok("every key", {"type": "object", "required": ["keys"], "properties": {
            "keys": {"type": "array", "items": _ref("SigningKey")}}})})},
    "/admin/keys/rotate": {"post": _admin("rotate now (409 until the next key is published "
                                          "long enough)",
                                          {"200": _ok("what changed", _ref("KeyChange"))})},
    "/admin/keys/{kid}/revoke": {"post": _admin(
        "revoke a compromised key", {"200": _ok("what changed", _ref("KeyChange"))},
        params=[_path_param("kid", "key id")])},
    "/admin/subjects/{sub}/revoke": {"post": _admin(
        "revoke everything of a subject issued before now",
        {"200": _ok("the revocation", _ref("SubjectRevocation"))},
        params=[_path_param("sub", "subject")])},
    "/admin/clients": {
        "post": _admin("create a client", {"201": _ok("the client", _ref("Client"))}, body={
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                           "scopes": SCOPES,
                           "audiences": SCOPES, "token_ttl": DURATION,
                           "exchange_audiences": SCOPES,
                           "dpop_required": {"type": "boolean"}}}),
        "get": _admin("list clients", {"200": _ok("every client", {
            "type": "object", "required": ["clients"],
            "properties": {"clients": {"type": "array", "items": _ref("Client")}}})}),
    },
    "/admin/clients/{client_id}": {"get": _admin(
        "one client", {"200": _ok("the client", _ref("Client"))},
        params=[_path_param("client_id", "client id")])},
    "/admin/clients/{client_id}/token-policy": {"post": _admin(
        "set the audiences a client may obtain by token exchange (RFC 8693) and whether "
        "its token requests need a DPoP proof (RFC 9449)",
        {"200": _ok("the client", _ref("Client"))},
        params=[_path_param("client_id", "client id")],
        body={"type": "object", "properties": {"exchange_audiences": SCOPES,
                                               "dpop_required": {"type": "boolean"}}})},
    "/admin/clients/{client_id}/disable": {"post": _admin(
        "disable a client; its keys stop at once", {"200": _ok("the client", _ref("Client"))},
        params=[_path_param("client_id", "client id")])},
    "/admin/clients/{client_id}/keys": {
        "post": _admin("create an API key (shown once)",
                       {"201": _ok("the key", _ref("IssuedApiKey"), headers=NO_STORE)},
                       params=[_path_param("client_id", "client id")], required_body=False,
                       body={"type": "object", "properties": {
                           "scopes": SCOPES, "expires_in": DURATION,
                           "rate_limit": {"type": "string", "examples": ["100/m"]}}}),
        "get": _admin("list a client's keys", {"200": _ok("the keys", {
            "type": "object", "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": _ref("ApiKey")}}})},
                      params=[_path_param("client_id", "client id")]),
    },
    "/admin/apikeys/{key_id}": {"get": _admin(
        "one API key", {"200": _ok("the key", _ref("ApiKey"))},
        params=[_path_param("key_id", "key id")])},
    "/admin/apikeys/{key_id}/revoke": {"post": _admin(
        "revoke an API key", {"200": _ok("the key", _ref("ApiKey"))},
        params=[_path_param("key_id", "key id")])},
    "/admin/apikeys/{key_id}/rotate": {"post": _admin(
        "make a successor; the old key expires after the overlap (default 24h)",
        {"201": _ok("the new key and the previous one", {"allOf": [
            _ref("IssuedApiKey"), {"type": "object", "required": ["previous"],
                                   "properties": {"previous": _ref("ApiKey")}}]})},
        params=[_path_param("key_id", "key id")], required_body=False,
        body={"type": "object", "properties": {"overlap": DURATION}})},
    "/admin/users": {"post": _admin("create a user", {"201": _ok("the user", _ref("User"))},
                                    body=_CREDENTIALS)},
    "/admin/users/{user}": {"get": _admin(
        "one user (by id or email)", {"200": _ok("the user", _ref("User"))},
        params=[_path_param("user", "user id or email")])},
    "/admin/users/{user}/password": {"put": _admin(
        "set a user's password", {"200": _ok("the user", _ref("User"))},
        params=[_path_param("user", "user id or email")],
        body={"type": "object", "required": ["password"], "additionalProperties": False,
              "properties": {"password": {"type": "string"}}})},
    "/admin/users/{user}/disable": {"post": _admin(
        "disable a user and revoke their sessions", {"200": _ok("the user", _ref("User"))},
        params=[_path_param("user", "user id or email")])},
    "/admin/users/{user}/unlock": {"post": _admin(
        "unlock a locked user", {"200": _ok("the user", _ref("User"))},
        params=[_path_param("user", "user id or email")])},
    "/admin/users/{user}/roles/admin": {
        "put": _admin("give a user the admin role (operator of the console); audited",
                      {"200": _ok("the user's id, email and roles", _OPERATOR)},
                      params=[_path_param("user", "user id or email")]),
        "delete": _admin("take the admin role; ends the user's console sessions; audited",
                         {"200": _ok("the user's id, email and roles", _OPERATOR)},
                         params=[_path_param("user", "user id or email")])},
    "/admin/operators": {"get": _admin(
        "users holding the admin role",
        {"200": _ok("the operators", {
            "type": "object", "required": ["operators"],
            "properties": {"operators": {"type": "array", "items": {
                "type": "object", "required": ["id", "email"],
                "properties": {"id": {"type": "string"}, "email": {"type": "string"}}}}}})})},
    "/admin/audit": {"get": _admin(
        "audit events, newest first; `after_id` returns only newer ones",
        {"200": _ok("the events and a cursor (the highest id returned, else after_id)", {
            "type": "object", "required": ["events", "cursor"],
            "properties": {"cursor": {"type": "integer", "minimum": 0},
                           "events": {"type": "array", "items": _ref("AuditEvent")}}})},
        params=[
            {"name": "action", "in": "query", "required": False,
             "schema": {"type": "string", "pattern": "^[a-z0-9_.]{1,64}$"},
             "description": "a dotted name such as apikey.revoke"},
            {"name": "subject", "in": "query", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": 256}},
            {"name": "after_id", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": 2**62, "default": 0}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        ])},
    "/admin/users/{user}/mfa": {"get": _admin(
        "a user's MFA state", {"200": _ok("the state", _ref("MfaStatus"))},
        params=[_path_param("user", "user id or email")])},
    "/admin/users/{user}/mfa/reset": {"post": _admin(
        "remove a user's TOTP and recovery codes (lost device)",
        {"200": _ok("whether anything was enrolled", {
            "type": "object", "required": ["user_id", "reset"],
            "properties": {"user_id": {"type": "string"}, "reset": {"type": "boolean"}}})},
        params=[_path_param("user", "user id or email")])},
    "/admin/users/{user}/logins": {"get": _admin(
        "a user's recent completed logins, newest first",
        {"200": _ok("the logins", {
            "type": "object", "required": ["user_id", "logins"],
            "properties": {"user_id": {"type": "string"},
                           "logins": {"type": "array", "items": _ref("LoginRecord")}}})},
        params=[_path_param("user", "user id or email"), _LIMIT])},
    "/admin/users/{user}/anomalies": {"get": _admin(
        "a user's `login.anomaly` events, newest first",
        {"200": _ok("the anomalies", {
            "type": "object", "required": ["user_id", "anomalies"],
            "properties": {"user_id": {"type": "string"},
                           "anomalies": {"type": "array", "items": _ref("LoginAnomaly")}}})},
        params=[_path_param("user", "user id or email"), _LIMIT])},
    "/admin/apikeys/{key_id}/networks": {"get": _admin(
        "the networks (/24 or /48) an API key was used from, and its allowed CIDRs",
        {"200": _ok("the networks", _ref("KeyNetworks"))},
        params=[_path_param("key_id", "key id")])},
    "/admin/apikeys/{key_id}/allowed-cidrs": {"put": _admin(
        "restrict an API key to source CIDRs (null or [] lifts the restriction)",
        {"200": _ok("the key's networks and allowed CIDRs", _ref("KeyNetworks"))},
        params=[_path_param("key_id", "key id")],
        body={"type": "object", "required": ["allowed_cidrs"], "additionalProperties": False,
              "properties": {"allowed_cidrs": {
                  "type": ["array", "null"], "maxItems": 64,
                  "items": {"type": "string", "examples": ["10.0.0.0/8", "2001:db8::/32"]},
                  "description": "IPv4/IPv6 networks; host bits are ignored"}}})},
}


def _version() -> str:
    try:
        return version("authd")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "authd", "version": _version(),
            "description": "Token service: RS256 access tokens, JWKS with safe rotation, "
                           "API-key exchange, rotating refresh tokens, revocation, "
                           "TOTP second factor, login and API-key anomaly signals.",
        },
        "tags": [{"name": "public"}, {"name": "mfa"}, {"name": "admin"},
                 {"name": "operations"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "clientBasic": {"type": "http", "scheme": "basic",
                                "description": "client_id : an API key of that client"},
            },
        },
    }


_BODY = json.dumps(document(), separators=(",", ":")).encode()


async def openapi_json(request: Request) -> Response:
    return Response(_BODY, media_type=JSON, headers={"Cache-Control": "public, max-age=300"})


routes: list[BaseRoute] = [Route("/openapi.json", openapi_json, methods=["GET"])]
