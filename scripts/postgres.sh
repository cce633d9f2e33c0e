# Starts a throw-away PostgreSQL server on loopback for the test suite. Source this file, call
# `pg_start`, and `pg_stop` when done (the test script does it in an EXIT trap).
# pg_start exports BACKSPACE_TEST_POSTGRES_URL, an admin URL of the new server.

pg_bin() {
    local dir
    for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

pg_start() {
    local bin
    if ! bin=$(pg_bin); then
        echo "postgres: not installed; installing the machine's PostgreSQL packages" >&2
        if [ "$(id -u)" = 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
                { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
        else
            sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        fi
        bin=$(pg_bin) || { echo "postgres: initdb still not found" >&2; return 1; }
    fi
    PG_DIR=$(mktemp -d /tmp/backspace-pg.XXXXXX)
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local run=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root: the server runs as the postgres user.
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; return 1; }
    "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2 ||
        { cat "$PG_DIR/server.log" >&2; return 1; }
    PG_CTL=("${run[@]}" "$bin/pg_ctl")
    export BACKSPACE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "postgres: started on 127.0.0.1:$PG_PORT" >&2
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        "${PG_CTL[@]}" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        echo "postgres: stopped" >&2
    fi
}
