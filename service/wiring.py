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
    # --- revocation routes ---
    from service.revocation.handlers import routes as revocation_routes

    routes.extend(revocation_routes)
    # --- apikeys routes ---
    # --- sessions routes ---
    return routes


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every domain's CLI commands."""
    # --- signing cli ---
    # --- revocation cli ---
    from service.revocation.cli import register as register_revocation

    register_revocation(sub)
    # --- apikeys cli ---
    # --- sessions cli ---
    # --- audit cli ---
    return None


async def wire(runtime: Runtime, *, serving: bool) -> None:
    """Attach each domain's services to ``runtime``; start their loops if serving."""
    # --- signing wire ---
    # --- revocation wire ---
    from service.revocation.wiring import wire as wire_revocation

    await wire_revocation(runtime, serving=serving)
    # --- apikeys wire ---
    # --- sessions wire ---
    return None
