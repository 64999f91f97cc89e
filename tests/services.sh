#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that the test suite talks to are reachable:
# use running ones, start installed-but-stopped ones, install missing ones (Debian).
# PostgreSQL is always started as its own user (pg_ctlcluster drops to it), never root.
# Exits non-zero, naming the server, when one cannot be made reachable: the suite
# must fail rather than skip (DESIGN §8).
set -euo pipefail

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

say() { echo "[services] $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  return 1
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { say "apt-get not found: install $* by hand"; return 1; }
  if [ "$APT_UPDATED" -eq 0 ]; then as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PG_HBA_CHANGED=0
pg_trust_loopback() {
  # A fresh Debian cluster asks for passwords on TCP; the suite connects as
  # postgres without one, so loopback gets trust (a test machine only). Files that
  # already carry the rule are left alone; PG_HBA_CHANGED=1 says one was edited, so
  # a running cluster must restart to read it. pg_hba.conf is readable by postgres
  # only, hence grep as root too.
  local hba
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    as_root test -f "$hba" || continue
    if ! as_root grep -q "authd-test" "$hba"; then
      as_root sed -i '1i host all all 127.0.0.1/32 trust # authd-test\nhost all all ::1/128 trust # authd-test' "$hba"
      PG_HBA_CHANGED=1
    fi
  done
}

ensure_postgres() {
  if port_open "$PG_HOST" "$PG_PORT"; then say "PostgreSQL is up on $PG_HOST:$PG_PORT"; return 0; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    say "installing PostgreSQL"
    apt_install postgresql
  fi
  # Also for an installed-but-stopped cluster: it may never have got the rule (it
  # was installed by something else), and the suite's password-less login would fail.
  pg_trust_loopback
  local action=start
  # A changed pg_hba.conf is read at start; restart covers a cluster that is already
  # running (the package may start it before the edit) and starts a stopped one.
  if [ "$PG_HBA_CHANGED" -eq 1 ]; then action=restart; fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "${action}ing PostgreSQL $version (pg_ctlcluster runs it as the postgres user)"
  # A non-zero exit (e.g. "already running") is not fatal by itself: the port decides.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main "$action" \
    || say "pg_ctlcluster $action exited $? (its message is above); waiting for the port"
  wait_port "$PG_HOST" "$PG_PORT" || { say "PostgreSQL did not come up on $PG_HOST:$PG_PORT"; return 1; }
}

ensure_redis() {
  if port_open "$REDIS_HOST" "$REDIS_PORT"; then say "Redis is up on $REDIS_HOST:$REDIS_PORT"; return 0; fi
  if ! command -v redis-server >/dev/null; then
    say "installing Redis"
    apt_install redis-server
    # Where systemd runs, the package starts its own server on the default port.
    if port_open "$REDIS_HOST" "$REDIS_PORT"; then say "Redis is up on $REDIS_HOST:$REDIS_PORT"; return 0; fi
  fi
  say "starting Redis"
  mkdir -p /tmp/authd-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /tmp/authd-redis --logfile /tmp/authd-redis/redis.log
  wait_port "$REDIS_HOST" "$REDIS_PORT" || { say "Redis did not come up on $REDIS_HOST:$REDIS_PORT"; return 1; }
}

# promtool (rules, rule unit tests, metrics lint) comes from Debian's prometheus
# package. Only the promtool binary is taken from it: installing the package would
# also install (and on some machines start) a Prometheus server the suite never uses.
ensure_promtool() {
  if command -v promtool >/dev/null; then say "promtool is $(command -v promtool)"; return 0; fi
  command -v apt-get >/dev/null || { say "apt-get not found: install promtool by hand"; return 1; }
  say "installing promtool (from Debian's prometheus package)"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq; APT_UPDATED=1; fi
  local work
  work="$(mktemp -d)"
  chmod 0777 "$work"
  (cd "$work" && apt-get download -qq prometheus 2>/dev/null) \
    || { say "could not download Debian's prometheus package"; rm -rf "$work"; return 1; }
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  as_root install -m 0755 "$work/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$work"
  command -v promtool >/dev/null || { say "promtool is not on PATH after installing it"; return 1; }
}

# The browser tests (tests/support/browser.py) drive Debian's chromium through
# Playwright; Playwright's own browser download is never used.
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then say "chromium is /usr/bin/chromium"; return 0; fi
  say "installing chromium (Debian's package, for the browser tests)"
  apt_install chromium
  [ -x /usr/bin/chromium ] || { say "/usr/bin/chromium is missing after installing chromium"; return 1; }
}

# The interop tests (tests/support/node.py) run standard node clients (openid-client,
# jose), pinned in tests/support/node/package-lock.json and installed there by npm ci.
ensure_node() {
  if command -v node >/dev/null && command -v npm >/dev/null; then
    say "node $(node --version) and npm are there"; return 0
  fi
  say "installing nodejs and npm (Debian's packages, for the interop tests)"
  apt_install nodejs npm
  command -v node >/dev/null && command -v npm >/dev/null \
    || { say "node or npm is missing after installing nodejs npm"; return 1; }
}

# The README's quickstart (tests/test_quickstart.py runs it as written) uses curl and jq.
ensure_quickstart_tools() {
  if command -v curl >/dev/null && command -v jq >/dev/null; then
    say "curl and jq are there"; return 0
  fi
  say "installing curl and jq (Debian's packages, for the README quickstart)"
  apt_install curl jq
  command -v curl >/dev/null && command -v jq >/dev/null \
    || { say "curl or jq is missing after installing them"; return 1; }
}

# The one-send test (tests/http/test_e2e_one_send.py) watches the real server's socket
# writes with Debian's strace.
ensure_strace() {
  if command -v strace >/dev/null; then say "strace is $(command -v strace)"; return 0; fi
  say "installing strace (Debian's package, for the one-send test)"
  apt_install strace
  command -v strace >/dev/null || { say "strace is missing after installing it"; return 1; }
}

ensure_postgres
ensure_redis
ensure_promtool
ensure_chromium
ensure_node
ensure_quickstart_tools
ensure_strace
