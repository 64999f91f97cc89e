"""HTTP for delegation: ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``
at ``/oauth/token`` (RFC 8693 §2.1). Thin: read the form, authenticate the caller as
for ``client_credentials`` (an API key as client secret, with the failed-attempt
budget of ``Exchange.authenticate``), hand a ``DelegationRequest`` to the domain."""

from __future__ import annotations

from service.apikeys.credentials import form_client_credentials
from service.apikeys.exchange import pick_audience
from service.delegation.exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE, DelegationRequest
from service.errors import InvalidClient, InvalidRequest
from service.http.oauth import TokenRequest


async def token_exchange_grant(request: TokenRequest) -> bytes:
    form = request.form
    try:
        client_id, secret = form_client_credentials(form, request.authorization)
        verified = await request.runtime.api_key_exchange.authenticate(
            secret, ip=request.ip, grant=GRANT_TYPE, client_id=client_id,
        )
    except InvalidClient as exc:
        # RFC 6749 §5.2: the challenge names the scheme the client used.
        exc.headers["WWW-Authenticate"] = 'Basic realm="authd"'
        raise
    # The caller's key is held to its allowed sources and its rate limit here too, or
    # a key refused client_credentials could still mint tokens by exchange.
    await request.runtime.api_key_exchange.admit(verified, ip=request.ip, grant=GRANT_TYPE)
    if "actor_token" in form or "actor_token_type" in form:
        raise InvalidRequest("actor_token is not supported: the authenticated client is the actor")
    subject_token = form.get("subject_token")
    if not subject_token:
        raise InvalidRequest("subject_token is required")
    if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(f"requested_token_type can only be {ACCESS_TOKEN_TYPE}")
    return await request.runtime.token_exchange.exchange(DelegationRequest(
        caller=verified.client, caller_scopes=verified.key.scopes,
        unverified_subject_token=subject_token,
        audience=pick_audience(form.get("audience"), form.get("resource")),
        scope=form.get("scope"), ip=request.ip, dpop_jkt=request.dpop_jkt,
    ))
