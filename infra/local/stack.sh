#!/usr/bin/env bash
# The local stack: PostgreSQL, moto_server (S3 + SQS) and clamd, wired like production.
#
#   infra/local/stack.sh up      start what is not running; wire the demo bucket and queues
#   infra/local/stack.sh services  start PostgreSQL, moto_server and clamd only (tests, CI)
#   infra/local/stack.sh down    stop the moto_server and clamd this script started
#   infra/local/stack.sh env     print the environment that points docworker at the stack
#   infra/local/stack.sh roles   the two-role set-up (docs/deploy.md): roles docworker_owner
#                                (migrates) and docworker_app (runs), and a database
#                                docworker_roles owned by the first; idempotent
#
# PostgreSQL: a server already answering on 127.0.0.1:5432 is reused; otherwise the Debian
# package is installed if missing and its cluster started. moto_server: used from PATH, else
# installed into a virtualenv under .local/. clamd: one already answering PING on
# 127.0.0.1:3310 is reused; otherwise Debian's clamav-daemon is installed if missing and a clamd
# is started with .local/clamd.conf, loading only the test signatures in infra/local/clamav/
# (there is no network here for freshclam; see that folder's README). Everything this script
# creates lives in .local/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state="$root/.local"
mkdir -p "$state"

: "${DOCWORKER_MOTO_PORT:=4566}"
: "${DOCWORKER_PG_PORT:=5432}"
: "${DOCWORKER_CLAMD_PORT:=3310}"
export AWS_ENDPOINT_URL="http://127.0.0.1:${DOCWORKER_MOTO_PORT}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"  # boto3 reads this one
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
# The password is ignored under trust auth and needed under Debian's default scram auth.
export DOCWORKER_ADMIN_DATABASE_URL="${DOCWORKER_ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:${DOCWORKER_PG_PORT}/postgres}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:${DOCWORKER_PG_PORT}/docworker}"
# The two-role set-up: `DATABASE_URL=$DOCWORKER_OWNER_DATABASE_URL docworker migrate`, then
# `DATABASE_URL=$DOCWORKER_APP_DATABASE_URL docworker run --no-migrate`.
export DOCWORKER_OWNER_DATABASE_URL="postgres://docworker_owner:docworker_owner@127.0.0.1:${DOCWORKER_PG_PORT}/docworker_roles"
export DOCWORKER_APP_DATABASE_URL="postgres://docworker_app:docworker_app@127.0.0.1:${DOCWORKER_PG_PORT}/docworker_roles"
# Beside the port rather than the checkout, so that any checkout reusing a running moto_server
# finds its request log (the integration tests read it).
export DOCWORKER_MOTO_LOG="${TMPDIR:-/tmp}/docworker-moto-${DOCWORKER_MOTO_PORT}.log"
moto_pid="${TMPDIR:-/tmp}/docworker-moto-${DOCWORKER_MOTO_PORT}.pid"
# The worker scans through TCP: any checkout reaches a clamd another one started. The Unix
# socket (the same daemon) is for tools and tests on this checkout.
export DOCWORKER_CLAMD_ADDR="127.0.0.1:${DOCWORKER_CLAMD_PORT}"
clamd_conf="$state/clamd.conf"
clamd_socket="$state/clamd.sock"
clamd_log="$state/clamd.log"
clamd_pid="$state/clamd.pid"

say() { echo "stack: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  say "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p "$DOCWORKER_PG_PORT" 2>/dev/null; }

ensure_postgres() {
  command -v pg_isready >/dev/null || apt_install postgresql postgresql-client
  if pg_up; then say "PostgreSQL answers on 127.0.0.1:$DOCWORKER_PG_PORT: reusing it"; else
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install postgresql
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || { say "no PostgreSQL cluster under /etc/postgresql"; exit 1; }
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    pg_up || { say "PostgreSQL did not come up on 127.0.0.1:$DOCWORKER_PG_PORT"; exit 1; }
    # A fresh Debian cluster asks for a password over TCP: give postgres the one the URLs use.
    as_root runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
  fi
  psql "$DOCWORKER_ADMIN_DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'docworker'" | grep -q 1 \
    || psql "$DOCWORKER_ADMIN_DATABASE_URL" -qc "CREATE DATABASE docworker"
}

# The roles, then a database the owner role owns, that only the runtime role may connect to
# besides, and where no one else may create objects. Migrations then run as the owner.
ensure_roles() {
  psql "$DOCWORKER_ADMIN_DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$here/roles.sql"
  psql "$DOCWORKER_ADMIN_DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'docworker_roles'" | grep -q 1 \
    || psql "$DOCWORKER_ADMIN_DATABASE_URL" -qc "CREATE DATABASE docworker_roles OWNER docworker_owner"
  psql "$DOCWORKER_ADMIN_DATABASE_URL" -q -v ON_ERROR_STOP=1 \
    -c "REVOKE ALL ON DATABASE docworker_roles FROM PUBLIC" \
    -c "GRANT CONNECT ON DATABASE docworker_roles TO docworker_app"
  psql "${DOCWORKER_ADMIN_DATABASE_URL%/*}/docworker_roles" -q -v ON_ERROR_STOP=1 \
    -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
  say "roles docworker_owner and docworker_app ready; database docworker_roles"
}

ensure_venv() {
  [ -x "$state/venv/bin/pip" ] && return
  python3 -m venv "$state/venv" 2>/dev/null || { apt_install python3-venv python3-pip; python3 -m venv "$state/venv"; }
}

moto_bin() {
  if command -v moto_server >/dev/null; then command -v moto_server; return; fi
  if [ ! -x "$state/venv/bin/moto_server" ]; then
    ensure_venv
    say "installing moto[server] into $state/venv"
    "$state/venv/bin/pip" install -q 'moto[server]>=5,<6' boto3
  fi
  echo "$state/venv/bin/moto_server"
}

moto_up() { curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; }

ensure_moto() {
  command -v curl >/dev/null || apt_install curl
  if moto_up; then
    say "moto answers on $AWS_ENDPOINT_URL: reusing it"
    [ -f "$DOCWORKER_MOTO_LOG" ] || say "warning: no request log at $DOCWORKER_MOTO_LOG (moto was not started by this script)"
    return
  fi
  local bin
  bin=$(moto_bin)
  say "starting moto_server on $AWS_ENDPOINT_URL (log: $DOCWORKER_MOTO_LOG)"
  nohup "$bin" -H 127.0.0.1 -p "$DOCWORKER_MOTO_PORT" >"$DOCWORKER_MOTO_LOG" 2>&1 &
  echo $! >"$moto_pid"
  for _ in $(seq 1 100); do moto_up && return; sleep 0.2; done
  say "moto_server did not start; its log:"; tail -n 20 "$DOCWORKER_MOTO_LOG" >&2; exit 1
}

# PING over bash's /dev/tcp, so that no client needs installing: clamd answers "PONG\0".
clamd_up() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "zPING\0" >&3 && IFS= read -r -d "" reply <&3 && [ "$reply" = PONG ]' _ "$DOCWORKER_CLAMD_PORT" 2>/dev/null
}

# StreamMaxLength is the most INSTREAM accepts: keep it at least DOCWORKER_SCAN_MAX_BYTES (the
# worker's default is 1 GiB, its DOCWORKER_MAX_OBJECT_BYTES), so that the worker, which knows each
# object's length, decides what is too large to scan and never sends clamd more than it takes.
# MaxFileSize as large, MaxScanSize twice that (an archive's members, unpacked, are scanned too:
# a 1 GiB archive may expand to 2 GiB and still be read whole), and AlertExceedsMax, so that
# content beyond a limit is reported ("Heuristics.Limits.Exceeded.*", read by the worker as not
# scanned: too large) instead of passing as clean unread. MaxScanTime above the worker's wait for
# an answer to 1 GiB (DOCWORKER_SCAN_TIMEOUT_SECS + 1 s per 5 MiB: 265 s): clamd scans a stream
# only once it has ended. clamd spools each stream to its TemporaryDirectory (/tmp): up to
# DOCWORKER_CONCURRENCY × StreamMaxLength on disk at once.
write_clamd_conf() {
  cat >"$clamd_conf" <<CONF
# Written by infra/local/stack.sh; rewritten on every start.
DatabaseDirectory $here/clamav
TCPSocket $DOCWORKER_CLAMD_PORT
TCPAddr 127.0.0.1
LocalSocket $clamd_socket
FixStaleSocket yes
LocalSocketMode 660
Foreground no
PidFile $clamd_pid
LogFile $clamd_log
LogTime yes
StreamMaxLength 1024M
MaxFileSize 1024M
MaxScanSize 2048M
MaxScanTime 300000
AlertExceedsMax yes
CommandReadTimeout 30
ReadTimeout 120
MaxThreads 8
CONF
}

# Debian confines /usr/sbin/clamd with AppArmor (on a desktop or server install, not in a
# container): allow it this checkout's signatures and the files it writes under .local/, through
# the profile's local include, the way Debian's README asks for non-standard paths.
allow_clamd_in_apparmor() {
  local profile=/etc/apparmor.d/usr.sbin.clamd local_rules=/etc/apparmor.d/local/usr.sbin.clamd
  [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] || return 0
  [ -f "$profile" ] && command -v apparmor_parser >/dev/null || return 0
  grep -qF "\"$state/clamd.*\"" "$local_rules" 2>/dev/null && return 0
  say "allowing clamd (AppArmor) to read $here/clamav and write $state/clamd.*"
  printf '%s\n' "# docworker local stack: $root" \
    "\"$here/clamav/\" r," "\"$here/clamav/**\" r," "\"$state/\" r," "\"$state/clamd.*\" rwk," \
    | as_root tee -a "$local_rules" >/dev/null
  as_root apparmor_parser -r "$profile"
}

ensure_clamd() {
  if clamd_up; then say "clamd answers on $DOCWORKER_CLAMD_ADDR: reusing it"; return; fi
  [ -x /usr/sbin/clamd ] || apt_install clamav-daemon
  allow_clamd_in_apparmor
  write_clamd_conf
  say "starting clamd on $DOCWORKER_CLAMD_ADDR and $clamd_socket (log: $clamd_log)"
  # Runs as the invoking user (no User directive): nothing it touches needs root. It forks once
  # the signatures are loaded and writes its pid.
  /usr/sbin/clamd --config-file="$clamd_conf" || { say "clamd did not start; its log:"; tail -n 20 "$clamd_log" >&2; exit 1; }
  for _ in $(seq 1 120); do clamd_up && return; sleep 0.5; done
  say "clamd does not answer PING; its log:"; tail -n 20 "$clamd_log" >&2; exit 1
}

python_with_boto3() {
  if python3 -c 'import boto3' 2>/dev/null; then echo python3; else moto_bin >/dev/null; echo "$state/venv/bin/python"; fi
}

case "${1:-up}" in
  up)
    ensure_postgres
    ensure_moto
    ensure_clamd
    "$(python_with_boto3)" "$here/wire.py"
    ;;
  services)
    # The services only: the integration tests make their own buckets and queues.
    ensure_postgres
    ensure_moto
    ensure_clamd
    ;;
  roles)
    ensure_postgres
    ensure_roles
    ;;
  venv)
    # A virtualenv under .local/ for PyPI tools (Debian's Python refuses system-wide pip).
    ensure_venv
    ;;
  down)
    if [ -f "$moto_pid" ]; then kill "$(cat "$moto_pid")" 2>/dev/null || true; rm -f "$moto_pid"; say "moto stopped"; fi
    if [ -f "$clamd_pid" ]; then kill "$(cat "$clamd_pid")" 2>/dev/null || true; rm -f "$clamd_pid"; say "clamd stopped"; fi
    ;;
  env)
    for name in AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY DATABASE_URL DOCWORKER_ADMIN_DATABASE_URL DOCWORKER_OWNER_DATABASE_URL DOCWORKER_APP_DATABASE_URL DOCWORKER_MOTO_LOG DOCWORKER_CLAMD_ADDR; do
      printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'export DOCWORKER_QUEUE_URL=%q\n' "$AWS_ENDPOINT_URL/123456789012/docworker-uploads"
    ;;
  *) echo "usage: $0 up|services|roles|venv|down|env" >&2; exit 2 ;;
esac
