"""Which domain components a Runtime gets, and in what order.

Kept apart from ``runtime.py`` so that adding a domain touches one list here.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from service.runtime import Runtime


def domain_routes() -> list[BaseRoute]:
    """Every domain's HTTP routes."""
    return []


async def wire(runtime: Runtime, *, serving: bool) -> None:
    """Attach each domain's services to ``runtime``; start their loops if serving."""
    return None


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every domain's CLI commands."""
    return None
