#!/usr/bin/env bash
# Make the secrets deploy/compose.yaml needs, once: a KEK (base64 of 32 random bytes)
# in deploy/secrets/kek and a database password in deploy/.env. Both paths are
# git-ignored (deploy/.gitignore) and kept out of the image (.dockerignore).
# Never overwrites: losing the KEK makes every stored signing key unreadable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
umask 077
mkdir -p "$here/secrets"
if [ ! -s "$here/secrets/kek" ]; then
  python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > "$here/secrets/kek"
  echo "wrote $here/secrets/kek"
fi
# The container runs as uid 10001 and compose mounts the file as it is on the host.
chmod 0444 "$here/secrets/kek"
if [ ! -s "$here/.env" ]; then
  printf 'AUTHD_DB_PASSWORD=%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" > "$here/.env"
  echo "wrote $here/.env"
fi
