# shellcheck shell=bash
# Project-local PostgreSQL for development and tests.
#
# Usage (from a bash script, `set -euo pipefail` friendly):
#
#     source scripts/lib/postgres.sh
#     telemed_ensure_postgres
#
# If DATABASE_URL is already set and non-empty, telemed_ensure_postgres does nothing.
# Otherwise it starts (initialising on first use) a PostgreSQL cluster that belongs to
# this checkout and exports
#
#     TELEMED_PG_SERVER_URL=postgres://postgres@127.0.0.1:$PORT/postgres
#     DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/telemed
#
# PORT is $TELEMED_PG_PORT if set; otherwise the port this checkout's cluster already runs
# on, or the first free port from 55432 up (several checkouts can run side by side).
# The data lives in $REPO/.data/postgres (or, when running as root and the `postgres` OS user cannot reach the repository, in
# /var/lib/telemed-pg/<hash of repo path>/postgres). The server keeps running after the
# script ends and is reused by later runs; stop it with `telemed_stop_postgres`.
#
# Server binaries: the highest /usr/lib/postgresql/*/bin (Debian layout), or
# $TELEMED_PG_BINDIR if set. On Debian they are installed with apt-get when missing.
#
# Also sets (not exported) TELEMED_PG_BIN: the bin dir of the local cluster ("" when
# DATABASE_URL came from the environment).

_TELEMED_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
TELEMED_PG_BIN="${TELEMED_PG_BIN:-}"

_telemed_pg_log() { printf 'telemed-pg: %s\n' "$*" >&2; }
_telemed_pg_die() { printf 'telemed-pg: ERROR: %s\n' "$*" >&2; return 1; }

# Prints the newest Debian-layout PostgreSQL bin dir, or nothing.
_telemed_pg_find_bindir() {
    if [[ -n "${TELEMED_PG_BINDIR:-}" ]]; then
        [[ -x "$TELEMED_PG_BINDIR/pg_ctl" ]] && printf '%s\n' "$TELEMED_PG_BINDIR"
        return 0
    fi
    local c found=()
    for c in /usr/lib/postgresql/*/bin/pg_ctl; do
        [[ -x "$c" ]] && found+=("${c%/pg_ctl}")
    done
    ((${#found[@]})) || return 0
    printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

_telemed_pg_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        _telemed_pg_die "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/pg_ctl) and apt-get is not available. Install PostgreSQL, set TELEMED_PG_BINDIR, or set DATABASE_URL." || return 1
    fi
    local -a sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            _telemed_pg_die "PostgreSQL is not installed and we are neither root nor is sudo available. Run as root: apt-get install -y postgresql  (or set DATABASE_URL to an existing server)." || return 1
        fi
    fi
    _telemed_pg_log "PostgreSQL not found; installing Debian package 'postgresql' (${sudo[*]:-as root})..."
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || {
        _telemed_pg_die "apt-get update failed" || return 1
    }
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
        _telemed_pg_die "apt-get install postgresql failed" || return 1
    }
}

# Sets _TPG_BASE, _TPG_DATA, _TPG_RUN, _TPG_LOG, _TPG_USER (OS user to run the server as;
# empty = current user). With $1 = "create", also creates the directories.
_telemed_pg_paths() {
    local create="${1:-}"
    local repo="$_TELEMED_REPO"
    _TPG_BASE="$repo/.data"
    _TPG_USER=""
    if [[ "$(id -u)" == 0 ]]; then
        command -v runuser >/dev/null 2>&1 \
            || { _telemed_pg_die "running as root but 'runuser' is missing (util-linux)" || return 1; }
        local owner=""
        if [[ -f "$_TPG_BASE/postgres/PG_VERSION" ]]; then
            owner="$(stat -c %U "$_TPG_BASE/postgres")"
        fi
        if [[ -n "$owner" && "$owner" != root ]]; then
            # Existing cluster: keep running it as whoever owns it.
            _TPG_USER="$owner"
        else
            id postgres >/dev/null 2>&1 \
                || { _telemed_pg_die "running as root but there is no 'postgres' OS user (it is created by the Debian postgresql package)" || return 1; }
            _TPG_USER=postgres
            if ! (cd / && runuser -u postgres -- test -x "$repo") 2>/dev/null; then
                local hash
                hash="$(printf '%s' "$repo" | sha256sum | cut -c1-12)"
                _TPG_BASE="/var/lib/telemed-pg/$hash"
            fi
        fi
    fi
    _TPG_DATA="$_TPG_BASE/postgres"
    _TPG_RUN="$_TPG_BASE/run"
    _TPG_LOG="$_TPG_BASE/postgres.log"

    [[ "$create" == create ]] || return 0

    if [[ -n "$_TPG_USER" ]]; then
        # root: the base dir must be traversable by the server user.
        if [[ "$_TPG_BASE" == /var/lib/telemed-pg/* ]]; then
            mkdir -p /var/lib/telemed-pg
            chmod 755 /var/lib/telemed-pg
            mkdir -p "$_TPG_BASE"
            chown "$_TPG_USER:" "$_TPG_BASE"
            chmod 700 "$_TPG_BASE"
        else
            mkdir -p "$_TPG_BASE"
            chmod a+x "$_TPG_BASE"
        fi
        mkdir -p "$_TPG_DATA" "$_TPG_RUN"
        touch "$_TPG_LOG"
        chown "$_TPG_USER:" "$_TPG_DATA" "$_TPG_RUN" "$_TPG_LOG"
        chmod 700 "$_TPG_DATA"
        chmod 755 "$_TPG_RUN"
        (cd / && runuser -u "$_TPG_USER" -- test -w "$_TPG_DATA") \
            || { _telemed_pg_die "OS user '$_TPG_USER' cannot write $_TPG_DATA" || return 1; }
    else
        if [[ -e "$_TPG_DATA" && ! -O "$_TPG_DATA" ]]; then
            _telemed_pg_die "$_TPG_DATA is owned by '$(stat -c %U "$_TPG_DATA")', not by you ($(id -un)). Run as root, remove the directory (sudo rm -rf '$_TPG_DATA'), or set DATABASE_URL." || return 1
        fi
        mkdir -p "$_TPG_DATA" "$_TPG_RUN"
        chmod 700 "$_TPG_DATA"
        touch "$_TPG_LOG"
    fi
}

# Runs a command as the server's OS user.
_telemed_pg_as() {
    if [[ -n "$_TPG_USER" ]]; then
        (cd / && runuser -u "$_TPG_USER" -- "$@")
    else
        "$@"
    fi
}

_telemed_pg_socket_dir() {
    local port="$1"
    local sock="$_TPG_RUN/.s.PGSQL.$port"
    # sun_path is 108 bytes including the terminating NUL.
    if ((${#sock} > 107)); then
        printf '/tmp\n'
    else
        printf '%s\n' "$_TPG_RUN"
    fi
}

_telemed_pg_initdb() {
    local bin="$1"
    if [[ -f "$_TPG_DATA/PG_VERSION" ]]; then
        return 0
    fi
    if [[ -n "$(ls -A "$_TPG_DATA")" ]]; then
        _telemed_pg_die "$_TPG_DATA is not empty but has no PG_VERSION (a failed initdb?). Remove it and retry: rm -rf '$_TPG_DATA'" || return 1
    fi
    _telemed_pg_log "initialising PostgreSQL cluster in $_TPG_DATA"
    local initlog="$_TPG_BASE/initdb.log"
    if ! _telemed_pg_as "$bin/initdb" -D "$_TPG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$initlog" 2>&1; then
        _telemed_pg_log "initdb with --locale=C.UTF-8 failed; retrying with --locale=C"
        if ! _telemed_pg_as "$bin/initdb" -D "$_TPG_DATA" -A trust -U postgres -E UTF8 --locale=C >"$initlog" 2>&1; then
            tail -n 30 "$initlog" >&2 || true
            _telemed_pg_die "initdb failed (full output: $initlog)" || return 1
        fi
    fi
    # Settings for a local dev/test server. Port and socket dir are in
    # telemed-runtime.conf, rewritten before every start (see _telemed_pg_runtime_conf).
    # fsync stays on.
    _telemed_pg_as tee -a "$_TPG_DATA/postgresql.conf" >/dev/null <<'EOF'

# ---- added by telemed scripts/lib/postgres.sh ----
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 128MB
include_if_exists = 'telemed-runtime.conf'
EOF
}

_telemed_pg_runtime_conf() {
    local port="$1" sockdir="$2"
    printf "# written by telemed scripts/lib/postgres.sh before each start\nport = %s\nunix_socket_directories = '%s'\n" \
        "$port" "$sockdir" | _telemed_pg_as tee "$_TPG_DATA/telemed-runtime.conf" >/dev/null
}

_telemed_pg_is_running() {
    local bin="$1"
    _telemed_pg_as "$bin/pg_ctl" -D "$_TPG_DATA" status >/dev/null 2>&1
}

_telemed_pg_start() {
    local bin="$1" port="$2"
    local ready_rc=0
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 3 >/dev/null 2>&1 || ready_rc=$?
    if ((ready_rc == 0 || ready_rc == 1)); then
        _telemed_pg_die "another PostgreSQL server is already listening on 127.0.0.1:$port (not ours: $_TPG_DATA). Set TELEMED_PG_PORT to a free port or set DATABASE_URL." || return 1
    fi
    _telemed_pg_runtime_conf "$port" "$(_telemed_pg_socket_dir "$port")"
    _telemed_pg_log "starting PostgreSQL on 127.0.0.1:$port (data: $_TPG_DATA, log: $_TPG_LOG)"
    if ! _telemed_pg_as "$bin/pg_ctl" -D "$_TPG_DATA" -l "$_TPG_LOG" -w -t 60 start >/dev/null 2>&1; then
        _telemed_pg_log "pg_ctl start failed; last 30 lines of $_TPG_LOG:"
        tail -n 30 "$_TPG_LOG" >&2 || true
        _telemed_pg_die "could not start PostgreSQL" || return 1
    fi
}

# Prints the first port from $1 upward (at most 50 tries) on which nothing listens.
_telemed_pg_free_port() {
    local port="$1" tries
    for ((tries = 0; tries < 50; tries++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
        port=$((port + 1))
    done
    _telemed_pg_die "no free port from ${1} to ${port}; set TELEMED_PG_PORT or DATABASE_URL" || return 1
}

telemed_ensure_postgres() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        _telemed_pg_log "using DATABASE_URL from the environment"
        return 0
    fi
    local port="${TELEMED_PG_PORT:-55432}"
    local bin
    bin="$(_telemed_pg_find_bindir)"
    if [[ -z "$bin" ]]; then
        _telemed_pg_install || return 1
        bin="$(_telemed_pg_find_bindir)"
        [[ -n "$bin" ]] || { _telemed_pg_die "PostgreSQL was installed but no /usr/lib/postgresql/*/bin/pg_ctl was found" || return 1; }
    fi

    _telemed_pg_paths create || return 1
    _telemed_pg_initdb "$bin" || return 1

    if _telemed_pg_is_running "$bin"; then
        local running_port
        running_port="$(sed -n 4p "$_TPG_DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -z "${TELEMED_PG_PORT:-}" && -n "$running_port" ]]; then
            # No port asked for: keep the one this checkout's cluster already uses.
            port="$running_port"
        elif [[ -n "$running_port" && "$running_port" != "$port" ]]; then
            _telemed_pg_log "cluster is running on port $running_port, restarting it on port $port"
            _telemed_pg_as "$bin/pg_ctl" -D "$_TPG_DATA" -m fast -w stop >/dev/null 2>&1 \
                || { _telemed_pg_die "could not stop PostgreSQL (data: $_TPG_DATA)" || return 1; }
            _telemed_pg_start "$bin" "$port" || return 1
        fi
    else
        if [[ -z "${TELEMED_PG_PORT:-}" ]]; then
            # Another checkout's cluster (or any other server) may hold the default port:
            # take the next free one rather than fail.
            port="$(_telemed_pg_free_port "$port")" || return 1
        fi
        _telemed_pg_start "$bin" "$port" || return 1
    fi

    local i
    for ((i = 0; i < 60; i++)); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2 >/dev/null 2>&1; then
            break
        fi
        sleep 0.5
    done
    if ((i == 60)); then
        tail -n 30 "$_TPG_LOG" >&2 || true
        _telemed_pg_die "PostgreSQL on 127.0.0.1:$port did not become ready within 30s (log: $_TPG_LOG)" || return 1
    fi

    local -a psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
    local exists
    exists="$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'telemed'")" \
        || { _telemed_pg_die "could not query PostgreSQL on 127.0.0.1:$port" || return 1; }
    if [[ "$exists" != 1 ]]; then
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres telemed \
            || { _telemed_pg_die "could not create database 'telemed'" || return 1; }
        _telemed_pg_log "created database 'telemed'"
    fi

    TELEMED_PG_BIN="$bin"
    export TELEMED_PG_SERVER_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/telemed"
}

# Stops this checkout's local cluster if it is running. With --purge, also deletes its
# data, socket dir and log.
telemed_stop_postgres() {
    local purge="${1:-}"
    local bin
    bin="$(_telemed_pg_find_bindir)"
    [[ -n "$bin" ]] || return 0
    _telemed_pg_paths || return 1
    if [[ -f "$_TPG_DATA/PG_VERSION" ]] && _telemed_pg_is_running "$bin"; then
        _telemed_pg_log "stopping PostgreSQL (data: $_TPG_DATA)"
        _telemed_pg_as "$bin/pg_ctl" -D "$_TPG_DATA" -m fast -w stop >/dev/null 2>&1 \
            || { _telemed_pg_die "could not stop PostgreSQL (data: $_TPG_DATA)" || return 1; }
    fi
    if [[ "$purge" == --purge ]]; then
        rm -rf -- "$_TPG_DATA" "$_TPG_RUN" "$_TPG_LOG" "$_TPG_BASE/initdb.log"
        rmdir -- "$_TPG_BASE" 2>/dev/null || true
    fi
}
