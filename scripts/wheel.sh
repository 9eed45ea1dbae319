#!/usr/bin/env bash
# The Python wheel (dataerai-sdk with the bundled `dataerai` binary) as a user gets it.
#
#   scripts/wheel.sh build        build the wheel once per source state, print its path
#   scripts/wheel.sh quickstart   install it alone into a fresh venv and run the quick start
#                                 against a real server (`make test-wheel`)
#   scripts/wheel.sh typed        check that it ships py.typed and that mypy --strict accepts a
#                                 user script importing it (`make lint`)
#
# The wheel is built by maturin (sdk/python/pyproject.toml, [tool.maturin]) in release mode into
# target/wheels/<key>/, where <key> is the commit plus, for a modified tree, a hash of the
# modified and new files that go into it: a second call for the same sources reuses the wheel
# (cargo would not recompile, but maturin would still repack it). Older keys are removed.
#
# Environment: VPY, the developer venv's python (pip, maturin, mypy; `make venv`);
# DATAERAI_BIN_DIR, the directory of the dataerai-server the quick start runs against
# (default target/debug; the SDK's daemon is always the wheel's own binary).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VPY=${VPY:-$ROOT/.venv/bin/python}
WHEELS=$ROOT/target/wheels
FRESH=$ROOT/target/wheel-venv
TMP=$(mktemp -d -t dataerai-wheel.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# What goes into the wheel: the binary's crates and their lock file, and the Python package.
SOURCES=(Cargo.toml Cargo.lock crates sdk/python/pyproject.toml sdk/python/README.md sdk/python/src)

source_key() {
    local key
    key=$(git rev-parse HEAD)
    if [[ -n "$(git status --porcelain -- "${SOURCES[@]}")" ]]; then
        # Modified tracked files (their diff) and new untracked ones (their names and bytes).
        key+=-$({
            git diff HEAD -- "${SOURCES[@]}"
            git ls-files --others --exclude-standard -z -- "${SOURCES[@]}" |
                while IFS= read -r -d '' f; do printf '%s\n' "$f"; cat "$f"; done
        } | sha256sum | cut -c1-16)
    fi
    echo "$key"
}

build() {
    local key out wheel
    key=$(source_key)
    out=$WHEELS/$key
    wheel=$(compgen -G "$out/dataerai_sdk-*.whl" | head -n1 || true)
    if [[ -n "$wheel" ]]; then
        echo "==> reusing $wheel" >&2
    else
        echo "==> building the wheel (maturin, release) into $out" >&2
        rm -rf "$WHEELS"
        (cd sdk/python && "$VPY" -m maturin build --release --out "$out.partial" >&2)
        mv "$out.partial" "$out"
        wheel=$(compgen -G "$out/dataerai_sdk-*.whl" | head -n1)
    fi
    echo "$wheel"
}

# A fresh venv at $FRESH holding nothing but the wheel (not even pip: the developer venv's pip
# installs into it), and checks that the SDK and its binary carry one version.
fresh_venv() {
    local wheel=$1 version binary_version
    rm -rf "$FRESH"
    "$VPY" -m venv --without-pip "$FRESH"
    "$VPY" -m pip --python "$FRESH/bin/python" install --quiet --no-deps --no-index "$wheel"
    echo "==> installed $(basename "$wheel") into $FRESH:" >&2
    "$VPY" -m pip --python "$FRESH/bin/python" list --format=freeze >&2
    [[ -x "$FRESH/bin/dataerai" ]] || { echo "the wheel installed no $FRESH/bin/dataerai" >&2; exit 1; }
    version=$("$FRESH/bin/python" -c 'import dataerai; print(dataerai.__version__)')
    binary_version=$("$FRESH/bin/dataerai" --version)
    [[ "$binary_version" == "dataerai $version" ]] ||
        { echo "version mismatch: SDK $version, binary '$binary_version'" >&2; exit 1; }
    echo "    dataerai-sdk $version with $binary_version" >&2
}

# PATH without any directory that holds a `dataerai` (target/…, ~/.cargo/bin, an activated venv):
# the SDK must find the wheel's binary by itself.
path_without_dataerai() {
    local dir clean=()
    IFS=: read -r -a dirs <<<"$PATH"
    for dir in "${dirs[@]}"; do
        [[ -n "$dir" && ! -e "$dir/dataerai" ]] && clean+=("$dir")
    done
    (IFS=:; echo "${clean[*]}")
}

quickstart() {
    local wheel clean_path log=$TMP/demo.log
    wheel=$(build)
    fresh_venv "$wheel"
    clean_path=$(path_without_dataerai)
    # demo.sh with DEMO_SDK_BINARY=bundled passes no DATAERAI_BINARY and signs in with the
    # wheel's binary; it prints which binary the SDK started as the daemon.
    env -u DATAERAI_BINARY PATH="$clean_path" DEMO_SDK_BINARY=bundled VPY="$FRESH/bin/python" \
        DATAERAI_BIN_DIR="${DATAERAI_BIN_DIR:-$ROOT/target/debug}" scripts/demo.sh | tee "$log"
    grep -qF "daemon binary: $FRESH/bin/dataerai" "$log" ||
        { echo "the quick start's daemon was not the wheel's binary $FRESH/bin/dataerai" >&2; exit 1; }
    echo "==> the wheel works in a clean venv: the SDK found its bundled binary"
}

typed() {
    local wheel script=$TMP/user_script.py
    wheel=$(build)
    "$VPY" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if "dataerai/py.typed" not in names:
    sys.exit(f"{sys.argv[1]} does not ship dataerai/py.typed")
print("==> the wheel ships dataerai/py.typed", file=sys.stderr)
EOF
    fresh_venv "$wheel"
    cat >"$script" <<'EOF'
from dataerai import DaemonError, DataeraiClient, UploadResult


def upload(path: str, owner_id: str) -> UploadResult:
    with DataeraiClient() as client:
        return client.upload(path, title="scan", owner_type="user", owner_id=owner_id)


def code(err: DaemonError) -> str:
    return err.code
EOF
    # mypy looks the package up in the fresh venv (as a user's type checker would): without
    # py.typed it would report "missing library stubs or py.typed marker".
    (cd "$TMP" &&
        "$VPY" -m mypy --strict --no-incremental --python-executable "$FRESH/bin/python" "$script")
    echo "==> mypy --strict accepts a script using the installed package"
}

case "${1:-}" in
    build) build ;;
    quickstart) quickstart ;;
    typed) typed ;;
    *) echo "usage: $0 build|quickstart|typed" >&2; exit 2 ;;
esac
