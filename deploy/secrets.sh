#!/usr/bin/env bash
# Make the secrets deploy/compose.yaml needs, once: a KEK (base64 of 32 random bytes)
# in deploy/secrets/kek and a database password in deploy/.env. Both paths are
# git-ignored (deploy/.gitignore) and kept out of the image (.dockerignore).
# Never overwrites: losing the KEK makes every stored signing key unreadable.
#
# Compose bind-mounts the KEK file with its host owner and mode, and the container
# runs as uid 10001 (deploy/Dockerfile). Run as root (`sudo deploy/secrets.sh`), the
# KEK is given to uid 10001 with mode 0400, so only the container's user reads it;
# deploy/.env and deploy/secrets/ go to the sudo user, who runs `docker compose`.
# Run as anyone else, the KEK can only be made world-readable (0444), and the script
# warns. With Docker's userns-remap, uid 10001 in the container is another uid on the
# host: keep 0444 there, or use a secret store.
set -euo pipefail
CONTAINER_UID=10001
here="$(cd "$(dirname "$0")" && pwd)"
kek="$here/secrets/kek"
umask 077
mkdir -p "$here/secrets"
if [ ! -s "$kek" ]; then
  python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > "$kek"
  echo "wrote $kek"
fi
if [ ! -s "$here/.env" ]; then
  printf 'AUTHD_DB_PASSWORD=%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" > "$here/.env"
  echo "wrote $here/.env"
fi
if [ "$(id -u)" -eq 0 ]; then
  chown "$CONTAINER_UID:$CONTAINER_UID" "$kek"
  chmod 0400 "$kek"
  if [ -n "${SUDO_UID:-}" ]; then
    chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$here/secrets" "$here/.env"
  fi
elif [ -O "$kek" ]; then
  chmod 0444 "$kek"
  echo "warning: $kek is world-readable (0444) so that the container's uid $CONTAINER_UID" \
       "can read it; run deploy/secrets.sh as root to make it owned by $CONTAINER_UID, mode 0400" >&2
fi
# Otherwise an earlier root run already gave the KEK to the container's uid.
