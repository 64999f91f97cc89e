"""The JSON answers every handler gives: compact, and never cached by default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

# RFC 6749 §5.1 for tokens, and the safe default for anything naming credentials,
# users or keys: no shared or private cache keeps a copy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as compact JSON; ``headers`` replace the no-store default when given."""
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status,
        dict(headers) if headers is not None else NO_STORE,
        "application/json",
    )
