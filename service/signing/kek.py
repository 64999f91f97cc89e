"""The key-encryption key (KEK) and the AES-256-GCM sealing of secrets at rest.

Private signing keys (and later TOTP secrets) are stored only sealed under the KEK,
with the record's identity (e.g. the ``kid``) bound as associated data so that a
sealed blob copied onto another row fails to open instead of silently working.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.config import ConfigError, Settings

NONCE_BYTES = 12
VERSION = b"\x01"


class SealError(Exception):
    """A sealed value cannot be opened: wrong KEK, wrong record, or corrupted."""


class Kek:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a KEK is exactly 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Kek(**********)"

    def seal(self, plaintext: bytes, associated: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated.encode())

    def open(self, sealed: bytes, associated: str) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
            raise SealError("not a sealed value")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated.encode())
        except InvalidTag:
            raise SealError("cannot be opened with this KEK") from None


def decode_kek(variable: str, text: str) -> Kek:
    """A KEK from its base64 text; ConfigError names ``variable`` when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(variable, "expected base64 of 32 random bytes") from None
    if len(raw) != 32:
        raise ConfigError(variable, f"expected 32 bytes after base64 decoding, got {len(raw)}")
    return Kek(raw)


def generate_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def load_kek(settings: Settings) -> Kek:
    """The KEK from AUTHD_KEK / AUTHD_KEK_FILE, or the embedded default's file.

    Only the embedded default creates a KEK (``keys/kek``, mode 0600): a configured
    deployment that lost its KEK must fail loudly, never start with a fresh one.
    """
    if settings.kek is not None:
        return decode_kek("AUTHD_KEK", settings.kek.reveal())
    if settings.kek_file is not None:
        return decode_kek("AUTHD_KEK_FILE", settings.kek_file.read_text())
    path = settings.keys_dir / "kek"
    if not path.exists():
        _create_private_file(path, generate_text() + "\n")
    return decode_kek("AUTHD_KEK_FILE", path.read_text())


def _create_private_file(path: Path, content: str) -> None:
    """Create ``path`` (mode 0600) holding ``content`` unless it exists.

    Processes starting together on a fresh embedded default (the CLI beside a
    server, two workers) race here. The content is written to a private temporary
    file and then hard-linked into place, which fails if the name exists: a reader
    sees no file or the whole KEK, never an empty one (creating the final name
    first and writing it after let a racing reader fail on an empty file), and the
    first link wins for everyone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".kek-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first; theirs is the one
    finally:
        os.unlink(temporary)
