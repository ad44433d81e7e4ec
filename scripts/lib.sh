# Shared helpers for scripts/run and scripts/test. Sourced, not executed.

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

# Create .venv if needed and install the given requirements file when it changed.
ensure_venv() {
  local req=$1 py
  if [ ! -x .venv/bin/python ]; then
    py=$(command -v python3.11 || command -v python3 || true)
    [ -n "$py" ] || die "Python 3.11+ is required (python3 not found)."
    say "Creating virtualenv (.venv) with $($py --version)"
    "$py" -m venv .venv || die "Could not create the virtualenv: install python3-venv."
  fi
  local stamp=.venv/.requirements.sha256 want
  want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)-$req
  # requirements-dev.txt includes requirements.txt: a dev install also satisfies the run command.
  if [ "$req" = requirements.txt ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${want%-*}-requirements-dev.txt" ]; then
    want=$(cat "$stamp")
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "Installing Python packages from $req"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$req"
    echo "$want" > "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# host and port of a URL such as postgres://user@host:port/db
url_host() { python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1")' "$1"; }
url_port() { python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.port or sys.argv[2])' "$1" "$2"; }
is_local() { case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
port_open() { python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex((sys.argv[1], int(sys.argv[2]))))' "$1" "$2"; }

# ZENZEFI_TARGET_URL from the environment, else from the env file ($1); empty when neither sets it.
configured_target() {
  local value=${ZENZEFI_TARGET_URL:-}
  if [ -z "$value" ] && [ -f "$1" ]; then
    value=$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?ZENZEFI_TARGET_URL[[:space:]]*=[[:space:]]*//p' "$1" | tail -n1)
    value=${value%[\"\']}; value=${value#[\"\']}
  fi
  printf '%s' "$value"
}

wait_port() {
  local host=$1 port=$2 i
  for i in $(seq 1 30); do port_open "$host" "$port" && return 0; sleep 1; done
  return 1
}

ensure_postgres() {
  local host port
  host=$(url_host "$DATABASE_URL"); port=$(url_port "$DATABASE_URL" 5432)
  port_open "$host" "$port" && return 0
  is_local "$host" || die "PostgreSQL is not reachable at $host:$port (DATABASE_URL)."
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    say "Starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    wait_port "$host" "$port" || die "PostgreSQL did not start on $host:$port."
  else
    die "PostgreSQL is not running on $host:$port and is not installed. Install it (apt-get install postgresql) or point DATABASE_URL at a server."
  fi
}

ensure_redis() {
  local host port
  host=$(url_host "$REDIS_URL"); port=$(url_port "$REDIS_URL" 6379)
  port_open "$host" "$port" && return 0
  is_local "$host" || die "Redis is not reachable at $host:$port (REDIS_URL)."
  if command -v redis-server >/dev/null 2>&1; then
    say "Starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port "$host" "$port" || die "Redis did not start on $host:$port."
  else
    die "Redis is not running on $host:$port and is not installed. Install it (apt-get install redis-server) or point REDIS_URL at a server."
  fi
}

# Debian's Chromium drives the browser tests (Playwright cannot download a browser here).
ensure_chromium() {
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Debian chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || die "Could not install chromium with apt-get."
  else
    die "Chromium is needed for the browser tests: run 'sudo apt-get install chromium' (or set CHROMIUM_PATH)."
  fi
}
