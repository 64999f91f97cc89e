"""Which domain components a Runtime gets, their routes and CLI commands.

Kept apart from ``runtime.py`` so that adding a domain touches this one file. Each
domain owns its block below (signing, revocation, apikeys, sessions); the order of
``wire`` is the order of dependence.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from service.runtime import Runtime


def domain_routes() -> list[BaseRoute]:
    """Every domain's HTTP routes."""
    routes: list[BaseRoute] = []
    # --- signing routes ---
    from service.signing.handlers import routes as signing_routes

    routes.extend(signing_routes)
    # --- revocation routes ---
    from service.revocation.handlers import routes as revocation_routes

    routes.extend(revocation_routes)
    # --- apikeys routes ---
    from service.apikeys.handlers import routes as apikeys_routes
    from service.apikeys.wiring import grants as apikeys_grants

    apikeys_grants()
    routes.extend(apikeys_routes)
    # --- delegation routes ---
    from service.delegation.wiring import grants as delegation_grants

    delegation_grants()
    # --- sessions routes ---
    from service.sessions.handlers import routes as sessions_routes
    from service.sessions.wiring import grants as sessions_grants

    sessions_grants()
    routes.extend(sessions_routes)
    # --- mfa routes ---
    from service.anomaly.handlers import routes as anomaly_routes
    from service.mfa.handlers import routes as mfa_routes

    routes.extend(mfa_routes)
    routes.extend(anomaly_routes)
    # --- audit routes ---
    from service.audit.handlers import routes as audit_routes

    routes.extend(audit_routes)
    # --- console routes ---
    from service.console.handlers import admin_routes as console_admin_routes
    from service.console.handlers import routes as console_routes

    routes.extend(console_admin_routes)
    routes.extend(console_routes)
    # --- openapi routes ---
    from service.http.openapi import routes as openapi_routes

    routes.extend(openapi_routes)
    return routes


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every domain's CLI commands."""
    # --- signing cli ---
    from service.signing.cli import register as register_signing

    register_signing(sub)
    # --- revocation cli ---
    from service.revocation.cli import register as register_revocation

    register_revocation(sub)
    # --- apikeys cli ---
    from service.apikeys.cli import register as register_apikeys

    register_apikeys(sub)
    # --- sessions cli ---
    from service.sessions.cli import register as register_sessions

    register_sessions(sub)
    # --- mfa cli --- (``users mfa-reset/logins/anomalies`` are added by sessions' cli)
    from service.anomaly.cli import register as register_anomaly

    register_anomaly(sub)
    # --- audit cli ---
    from service.audit.cli import register as register_audit

    register_audit(sub)


async def wire(runtime: Runtime, *, serving: bool) -> None:
    """Attach each domain's services to ``runtime``; start their loops if serving."""
    # --- signing wire ---
    from service.signing.wiring import wire as wire_signing

    await wire_signing(runtime, serving=serving)
    # --- revocation wire ---
    from service.revocation.wiring import wire as wire_revocation

    await wire_revocation(runtime, serving=serving)
    # --- dpop wire --- (before the domains whose token requests it binds)
    from service.dpop.wiring import wire as wire_dpop

    await wire_dpop(runtime, serving=serving)
    # --- apikeys wire ---
    from service.apikeys.wiring import wire as wire_apikeys

    await wire_apikeys(runtime, serving=serving)
    # --- delegation wire ---
    from service.delegation.wiring import wire as wire_delegation

    await wire_delegation(runtime, serving=serving)
    # --- sessions wire ---
    from service.sessions.wiring import wire as wire_sessions

    await wire_sessions(runtime, serving=serving)
    # --- mfa wire --- (anomaly first: the MFA step uses its login monitor)
    from service.anomaly.wiring import wire as wire_anomaly
    from service.mfa.wiring import wire as wire_mfa

    await wire_anomaly(runtime, serving=serving)
    await wire_mfa(runtime, serving=serving)
    # --- console wire ---
    from service.console.wiring import wire as wire_console

    await wire_console(runtime, serving=serving)
    return None
