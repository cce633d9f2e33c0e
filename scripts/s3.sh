# Starts a throw-away S3 server (s3s-fs, which checks SigV4 signatures; path-style) on loopback
# for the test suite. Source this file, call `s3_start`, and `s3_stop` when done.
# s3_start exports BACKSPACE_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY, and
# BACKSPACE_TEST_S3FS (the binary, for tests that start servers of their own).

s3_start() {
    if ! command -v s3s-fs >/dev/null 2>&1; then
        echo "s3s-fs: not installed; installing it with cargo (a few minutes, once)" >&2
        cargo install s3s-fs --version 0.14.1 --features binary --locked >&2
    fi
    BACKSPACE_TEST_S3FS=$(command -v s3s-fs)
    export BACKSPACE_TEST_S3FS
    S3_DIR=$(mktemp -d /tmp/backspace-s3.XXXXXX)
    mkdir -p "$S3_DIR/backspace-test"
    local port key secret
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    key="AK$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
    secret="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    s3s-fs --host 127.0.0.1 --port "$port" --access-key "$key" --secret-key "$secret" "$S3_DIR" >"$S3_DIR.log" 2>&1 &
    S3_PID=$!
    # Ready when the port accepts connections (bounded).
    python3 - "$port" <<'PY' || { cat "$S3_DIR.log" >&2; return 1; }
import socket, sys, time
deadline = time.time() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("s3s-fs did not start")
        time.sleep(0.05)
PY
    export BACKSPACE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export BACKSPACE_TEST_S3_BUCKET=backspace-test
    export BACKSPACE_TEST_S3_ACCESS_KEY="$key"
    export BACKSPACE_TEST_S3_SECRET_KEY="$secret"
    echo "s3s-fs: started on 127.0.0.1:$port" >&2
}

s3_stop() {
    if [ -n "${S3_PID:-}" ]; then
        kill "$S3_PID" 2>/dev/null || true
        wait "$S3_PID" 2>/dev/null || true
        rm -rf "$S3_DIR" "$S3_DIR.log"
        echo "s3s-fs: stopped" >&2
    fi
}
