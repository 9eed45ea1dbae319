#!/usr/bin/env bash
# `make demo`: start an embedded dataerai-server on loopback with a throwaway
# data directory, create a demo user and token, sign the CLI in, and run the
# Python quick start against it. Everything lives in one temp dir, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${DATAERAI_BIN_DIR:-$PWD/target/release}
VPY=${VPY:-$PWD/.venv/bin/python}
WORK=$(mktemp -d -t dataerai-demo.XXXXXX)
SERVER_PID=""

cleanup() {
    status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        echo "demo failed (exit $status); server log:" >&2
        tail -n 30 "$WORK/server.log" >&2 || true
        tail -n 30 "$WORK/run/dataerai-daemon.log" >&2 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT INT TERM

mkdir -p "$WORK/data" "$WORK/config" "$WORK/run"
chmod 700 "$WORK/config" "$WORK/run"

echo "==> starting dataerai-server (data dir $WORK/data)"
"$BIN_DIR/dataerai-server" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 \
    >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 100); do
    URL=$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$WORK/server.out" | head -n1)
    [[ -n "$URL" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited early" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "server did not start within 10 s" >&2; exit 1; }
echo "    listening on $URL"

echo "==> creating demo user and a read,write token"
"$BIN_DIR/dataerai-server" admin create-user --data-dir "$WORK/data" --email demo@example.org >/dev/null
TOKEN=$("$BIN_DIR/dataerai-server" admin create-token --data-dir "$WORK/data" \
    --email demo@example.org --scope read,write --name demo)

export DATAERAI_CONFIG_DIR="$WORK/config"
export DATAERAI_SOCKET="$WORK/run/dataerai-transfer.sock"
# The CLI that signs in and that the quick start's SDK starts as its daemon: $BIN_DIR's, named
# by DATAERAI_BINARY. With DEMO_SDK_BINARY=bundled (scripts/wheel.sh), the one a wheel installed
# beside $VPY, and nothing names it: the SDK has to find it by itself.
if [[ "${DEMO_SDK_BINARY:-}" == bundled ]]; then
    CLI=$(dirname "$VPY")/dataerai
    unset DATAERAI_BINARY
else
    CLI=$BIN_DIR/dataerai
    export DATAERAI_BINARY="$CLI"
fi

echo "==> signing the CLI in"
printf '%s\n' "$TOKEN" | "$CLI" auth login --server "$URL" --token-stdin
unset TOKEN

EXAMPLE=${DATAERAI_EXAMPLE:-examples/quickstart.py}
echo "==> running $EXAMPLE"
"$VPY" "$EXAMPLE"
# The SDK's auto-start writes the binary it ran at the top of the daemon's log.
echo "    daemon binary: $(sed -n 's/^--- dataerai-sdk starting \(.*\) daemon --socket .*/\1/p' \
    "$WORK/run/dataerai-daemon.log" 2>/dev/null | head -n1)"
echo "==> demo finished"
