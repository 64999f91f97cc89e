"""Console errors. ``service.http.errors`` answers them (and every other typed error
under ``/console``) as a small HTML page with the same status a JSON client would get."""

from __future__ import annotations

from service.errors import AuthdError


class SignInRequired(AuthdError):
    """No live console session: the browser is sent to the sign-in page."""

    status = 303
    code = "sign_in_required"
    title = "Sign in to the console"

    def __init__(self, description: str | None = None, *, to: str = "/console/login") -> None:
        super().__init__(description, headers={"Location": to})


class Forbidden(AuthdError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class CsrfRejected(Forbidden):
    """A state-changing request without the session's CSRF token."""

    code = "csrf_rejected"
    title = "The form is stale or was not sent by the console"


class NotOperator(Forbidden):
    code = "not_an_operator"
    title = "This account may not use the console"


class FreshCodeRequired(Forbidden):
    """A destructive action needs a TOTP code entered with it."""

    code = "fresh_code_required"
    title = "Enter a current authenticator code to confirm"


class PlainHttpRefused(Forbidden):
    """The session cookie is Secure: the console over plain HTTP only on loopback."""

    code = "https_required"
    title = "The console needs HTTPS"
