#!/usr/bin/env bash
# Builds and tests regate on the PUBLISHED regorus (0.14.1 from crates.io), without vendor/regorus:
# proves that `cargo build --no-default-features` (no `regorus-fork` feature) needs nothing of the
# fork (src/engine_compat.rs, vendor/regorus/README.md "Building on the published regorus").
#
# A `[patch.crates-io]` cannot be switched off by a flag, so this makes a copy of the crate in
# $STOCK_REGORUS_DIR (default /tmp/stock-regorus-tree): Cargo.toml less its `[patch.crates-io]`
# section, Cargo.lock with only regorus's entry moved to the registry's 0.14.1 (all cargo commands
# run `--locked`), and symlinks to the rest of the tree (read-only; not vendor/, fuzz/, target/). Then,
# in CARGO_TARGET_DIR (default /tmp/stock-regorus-target, apart from regate's target/):
#
#   1. cargo check  --no-default-features --all-targets
#   2. cargo clippy --no-default-features --lib -- -D warnings
#   3. cargo test   --no-default-features --lib policy::        (loading and evaluation unit tests)
#   4. cargo test   --no-default-features --test engine_equivalence --test policies_examples
#                   --test cli_test_command                     (VM vs interpreter decisions on the
#                   corpora, the bundled policies against the examples, `regate test` end to end)
#   5. regate test --no-bundled policies                (the bundled library's own Rego tests)
#
# The published crate keeps the semantics the fork's correctness patches change (vendor/regorus/README.md),
# among them `not f(x)` with `x` undefined, which succeeds there and is undefined in OPA and the fork
# (patch 0024). The bundled policies are written not to depend on any of them, so steps 3 to 5 hold on
# both builds; tests/opa_differential.rs (not run here) compares the fork with OPA.
#
# Prints each command, its time and its test counts; exits non-zero on the first failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${STOCK_REGORUS_DIR:-/tmp/stock-regorus-tree}
VERSION=${REGORUS_VERSION:-0.14.1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/stock-regorus-target}
LOG=${STOCK_REGORUS_LOG:-/tmp/stock-regorus.log}

die() { echo "stock-regorus: $*" >&2; exit 1; }

case "$WORK" in /tmp/?*) ;; *) die "STOCK_REGORUS_DIR must be under /tmp (it is deleted): $WORK" ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"

# The manifest without the [patch.crates-io] section (up to the next blank line or table header).
awk '
    /^\[patch\.crates-io\][[:space:]]*$/ { skip = 1; next }
    skip && (/^[[:space:]]*$/ || /^\[/) { skip = 0; if (/^[[:space:]]*$/) next }
    !skip { print }
' "$ROOT/Cargo.toml" > "$WORK/Cargo.toml"
grep -q 'path = "vendor/regorus"' "$WORK/Cargo.toml" && die "Cargo.toml still names vendor/regorus"
for entry in "$ROOT"/* "$ROOT"/.cargo; do
    name=$(basename "$entry")
    [ -e "$entry" ] || continue
    case "$name" in Cargo.toml | Cargo.lock | target | vendor | fuzz) continue ;; esac
    ln -s "$entry" "$WORK/$name"
done

cd "$WORK"
echo "== stock regorus: $WORK (target $CARGO_TARGET_DIR, log $LOG)"
: > "$LOG"
# Only regorus changes in the lock: its entry, the path crate's (no source, no checksum), becomes the
# registry's $VERSION (checksum: the sha256 of the published .crate, which every build checks
# against the index). Re-resolving instead would be free to move other packages.
crate=""
for attempt in 1 2; do
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"regorus-$VERSION.crate" 2>/dev/null | head -n 1 || true)
    [ -n "$crate" ] && break
    # Not in cargo's cache yet: regorus-patches.sh fetches it (a scratch crate and `cargo fetch`).
    bash "$ROOT/scripts/regorus-patches.sh" pristine > /dev/null
done
[ -n "$crate" ] || die "regorus-$VERSION.crate is not in cargo's registry cache"
checksum=$(sha256sum "$crate" | cut -d' ' -f1)
awk -v version="$VERSION" -v checksum="$checksum" '
    $0 == "[[package]]" { regorus = 0 }
    $0 == "name = \"regorus\"" { regorus = 1; print; next }
    regorus && /^version = / {
        print "version = \"" version "\""
        print "source = \"registry+https://github.com/rust-lang/crates.io-index\""
        print "checksum = \"" checksum "\""
        next
    }
    regorus && /^(source|checksum) = / { next }
    { print }
' "$ROOT/Cargo.lock" > Cargo.lock
# Every other entry stays as it is: the lock must satisfy the manifest unchanged (`--locked`, as every
# cargo command below). (`cargo update -p regorus --precise` would also re-resolve some dev-dependency
# ranges, e.g. tempfile's getrandom.)
cargo metadata --locked --format-version 1 > /dev/null
source=$(awk '/^name = "regorus"$/ { found = 1; next } found && /^source = / { print; exit } found && /^$/ { exit }' Cargo.lock)
version=$(awk '/^name = "regorus"$/ { getline; print; exit }' Cargo.lock)
[ "$version" = "version = \"$VERSION\"" ] || die "Cargo.lock has regorus $version, not $VERSION"
case "$source" in *registry*) ;; *) die "Cargo.lock's regorus is not from the registry: ${source:-path}" ;; esac
echo "Cargo.lock: regorus $VERSION, $source; changes against the tree's lock:"
diff "$ROOT/Cargo.lock" Cargo.lock | sed 's/^/    /' || true

total_passed=0
total_failed=0
summary=()

# run LABEL CMD...: runs CMD, prints its time, adds the `test result:` counts of its output.
run() {
    local label=$1
    shift
    echo
    echo "== $label: $*"
    local started=$SECONDS out status
    out=$(mktemp)
    set +e
    "$@" 2>&1 | tee -a "$LOG" | tee "$out"
    status=${PIPESTATUS[0]}
    set -e
    local passed failed
    # `test result: ok. 176 passed; 0 failed; ...`, one line per test binary.
    passed=$(awk '/^test result: / { s += $4 } END { print s + 0 }' "$out")
    failed=$(awk '/^test result: / { s += $6 } END { print s + 0 }' "$out")
    rm -f "$out"
    local line="$label: $((SECONDS - started)) s"
    if [ "$passed" -gt 0 ] || [ "$failed" -gt 0 ]; then
        line+=", $passed passed, $failed failed"
        total_passed=$((total_passed + passed))
        total_failed=$((total_failed + failed))
    fi
    summary+=("$line")
    echo "-- $line (exit $status)"
    [ "$status" -eq 0 ] || die "$label failed (exit $status); output in $LOG"
}

started_all=$SECONDS
run "check" cargo check --locked --no-default-features --all-targets
run "clippy" cargo clippy --locked --no-default-features --lib -- -D warnings
run "unit tests policy::" cargo test --locked --no-default-features --lib policy::
run "integration tests" cargo test --locked --no-default-features \
    --test engine_equivalence --test policies_examples --test cli_test_command
# The bundled library's Rego tests, on the binary the previous step built (`regate test` exits
# non-zero on any failing or erroring test).
rego_out=$(mktemp)
run "bundled Rego tests" bash -c "set -o pipefail; \"\$CARGO_TARGET_DIR/debug/regate\" test --no-bundled policies | tee $rego_out"
rego_summary=$(grep -v '^[[:space:]]*$' "$rego_out" | tail -n 1)
rm -f "$rego_out"

echo
echo "== stock regorus $VERSION: all passed in $((SECONDS - started_all)) s"
for line in "${summary[@]}"; do echo "   $line"; done
echo "   cargo tests: $total_passed passed, $total_failed failed"
echo "   regate test --no-bundled policies: $rego_summary"
