"""Signing-key errors: what an operator or a caller of the key ring may see."""

from __future__ import annotations

from service.errors import Conflict, NotFound, TemporarilyUnavailable


class KeyUnsealable(TemporarilyUnavailable):
    """A stored private key does not open under this process's KEK.

    Either ``AUTHD_KEK`` / ``AUTHD_KEK_FILE`` is not the one the key was sealed with,
    or the row was altered. The service refuses to start (or to rotate) rather than
    silently creating a fresh key that no verifier knows.
    """

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"signing key {kid} cannot be decrypted with this KEK "
            "(is AUTHD_KEK / AUTHD_KEK_FILE the one the keys were sealed with?)"
        )
        self.kid = kid


class NoActiveKey(TemporarilyUnavailable):
    """No key may sign right now (first start not finished, or storage down)."""

    def __init__(self) -> None:
        super().__init__("no active signing key is loaded")


class RotationNotReady(Conflict):
    """DESIGN §5: the next key has not been published for the JWKS max-age yet, so a
    verifier honouring ``Cache-Control`` might not know it; rotating now would make
    its tokens fail verification."""

    def __init__(self, kid: str, ready_at: float, now: float) -> None:
        import math
        from datetime import UTC, datetime

        wait = max(0.0, ready_at - now)
        when = datetime.fromtimestamp(ready_at, UTC).isoformat(timespec="seconds")
        super().__init__(
            f"the next key {kid} has not been published long enough for verifiers' "
            f"JWKS caches; rotation is possible from {when} (in {math.ceil(wait)} s)",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
        self.kid = kid
        self.ready_at = ready_at


class KeySetIncomplete(Conflict):
    """The key set has no next key to promote even after completing it: another
    process changed it at the same moment. Looking again answers."""

    def __init__(self) -> None:
        super().__init__("the key set has no next key yet; run the rotation again")


class KeyNotFound(NotFound):
    def __init__(self, kid: str) -> None:
        super().__init__(f"no signing key {kid}")


class KeyNotRevocable(Conflict):
    def __init__(self, kid: str, state: str) -> None:
        super().__init__(f"signing key {kid} is {state} and cannot be revoked")


class RewrapRefused(Conflict):
    """``authd keys rewrap`` was given a new KEK equal to the current one."""

    def __init__(self) -> None:
        super().__init__("the new KEK is the current KEK; nothing to re-encrypt")
