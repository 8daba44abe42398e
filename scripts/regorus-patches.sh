#!/usr/bin/env bash
# The vendored regorus (vendor/regorus) as a patch series over the published crate.
#
#   scripts/regorus-patches.sh check            published crate + series + trim == vendor/regorus?
#   scripts/regorus-patches.sh apply DIR        the published crate with the series applied, in DIR
#   scripts/regorus-patches.sh apply --vendor DIR   ... and trimmed as vendor/regorus is
#   scripts/regorus-patches.sh test [--pristine] regorus's own test targets on the patched (or the
#                                               published) crate, with regate's features
#   scripts/regorus-patches.sh pristine         print the directory of the published crate
#
# The published crate comes from cargo's registry cache (fetched with `cargo fetch` through a scratch
# crate when missing). vendor/regorus/patches/series lists the patches in order;
# vendor/regorus/patches/trim/ says what vendor/regorus leaves out of the crate (paths, and the
# matching Cargo.toml sections). README.md, UPSTREAM.md and patches/ are our own files and are not
# compared. See vendor/regorus/README.md.
#
# Environment: REGORUS_VERSION (0.14.1), CARGO_TARGET_DIR for `test` (default /tmp/regorus-target,
# kept apart from regate's target/), REGORUS_TEST_DIR (default /tmp/regorus-test-tree),
# REGORUS_TEST_LOG (default /tmp/regorus-test.log), REGORUS_TEST_ARGS (extra `cargo test` arguments,
# e.g. `--lib`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENDOR="$ROOT/vendor/regorus"
PATCHES="$VENDOR/patches"
VERSION=${REGORUS_VERSION:-0.14.1}
# regate's features (Cargo.toml). For `test`, plus `yaml`, which regorus's `mod` test target needs
# (test_utils), and `regex/unicode`: regorus depends on regex without default features, and in
# regate's build other crates turn regex's unicode classes on (`\d` in a policy regex needs them); the
# crate's tests, built alone, would otherwise reject `\d` (tests/rvm/rego/cases/regex_size_limit.yaml).
FEATURES="arc std rvm coverage regex cache base64 base64url hex glob net semver"
TEST_FEATURES=${REGORUS_TEST_FEATURES:-"$FEATURES yaml regex/unicode"}
# Tests that fail with these features on the published crate as well, with the reason.
EXPECTED="$PATCHES/test-expected-failures"
OURS=(README.md UPSTREAM.md patches)

die() { echo "regorus-patches: $*" >&2; exit 1; }

# The .crate archive of the published version, fetched into cargo's cache when missing.
crate_file() {
    local home=${CARGO_HOME:-$HOME/.cargo} f
    f=$(ls "$home"/registry/cache/*/regorus-"$VERSION".crate 2>/dev/null | head -n1 || true)
    if [ -z "$f" ]; then
        local scratch
        scratch=$(mktemp -d)
        mkdir -p "$scratch/src"
        : >"$scratch/src/lib.rs"
        cat >"$scratch/Cargo.toml" <<EOF
[package]
name = "regorus-pristine-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
regorus = { version = "=$VERSION", default-features = false }

[workspace]
EOF
        (cd "$scratch" && cargo fetch --quiet) >&2 || die "cargo fetch of regorus $VERSION failed"
        rm -rf "$scratch"
        f=$(ls "$home"/registry/cache/*/regorus-"$VERSION".crate 2>/dev/null | head -n1 || true)
        [ -n "$f" ] || die "regorus-$VERSION.crate not in $home/registry/cache after cargo fetch"
    fi
    echo "$f"
}

# Extract the published crate into DIR (DIR/regorus-VERSION is moved to DIR).
extract_pristine() {
    local dir=$1 crate tmp
    crate=$(crate_file)
    tmp=$(mktemp -d)
    tar -xzf "$crate" -C "$tmp"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    mv "$tmp/regorus-$VERSION" "$dir"
    rmdir "$tmp"
}

series() { grep -v '^[[:space:]]*\(#\|$\)' "$PATCHES/series"; }

# Apply the series to the tree in DIR, one patch at a time, strictly (no fuzz).
apply_series() {
    local dir=$1 p n=0
    while read -r p; do
        [ -f "$PATCHES/$p" ] || die "series names $p, which is not in $PATCHES"
        if ! patch -d "$dir" -p1 --forward --fuzz=0 --no-backup-if-mismatch --quiet \
            -r - <"$PATCHES/$p" >/tmp/regorus-patch.out 2>&1; then
            cat /tmp/regorus-patch.out >&2
            die "$p does not apply"
        fi
        n=$((n + 1))
    done < <(series)
    echo "$n"
}

# Remove what vendor/regorus leaves out of the crate.
trim() {
    local dir=$1 path
    while read -r path; do
        case "$path" in '' | '#'*) continue ;; esac
        [ -e "$dir/$path" ] || die "trim/paths names $path, which the crate does not have"
        rm -rf "${dir:?}/$path"
    done <"$PATCHES/trim/paths"
    patch -d "$dir" -p1 --forward --fuzz=0 --no-backup-if-mismatch --quiet -r - \
        <"$PATCHES/trim/Cargo.toml.patch" >/dev/null || die "trim/Cargo.toml.patch does not apply"
}

cmd_apply() {
    local vendor=0
    if [ "${1:-}" = --vendor ]; then vendor=1; shift; fi
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: apply [--vendor] DIR"
    [ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || die "$dir exists and is not empty"
    extract_pristine "$dir"
    local n
    n=$(apply_series "$dir")
    if [ $vendor = 1 ]; then trim "$dir"; fi
    echo "regorus $VERSION + $n patches$([ $vendor = 1 ] && echo ', trimmed') in $dir"
}

cmd_check() {
    local n
    CHECK_TMP=$(mktemp -d)
    trap 'rm -rf "$CHECK_TMP"' EXIT
    extract_pristine "$CHECK_TMP/regorus"
    n=$(apply_series "$CHECK_TMP/regorus")
    trim "$CHECK_TMP/regorus"
    # vendor/regorus's top-level README.md, UPSTREAM.md and patches/ are ours (the published
    # README.md is replaced by ours): compared on neither side.
    local o
    for o in "${OURS[@]}"; do rm -rf "${CHECK_TMP:?}/regorus/$o"; done
    diff -rq "$CHECK_TMP/regorus" "$VENDOR" 2>&1 |
        grep -v -x -F -f <(for o in "${OURS[@]}"; do echo "Only in $VENDOR: $o"; done) \
            >"$CHECK_TMP/diff" || true
    if [ ! -s "$CHECK_TMP/diff" ]; then
        echo "check: regorus $VERSION + $n patches (+ trim) == vendor/regorus"
        return 0
    fi
    echo "check: vendor/regorus differs from regorus $VERSION + $n patches (+ trim):" >&2
    sed "s#$CHECK_TMP/regorus#<series>#g; s#$VENDOR#vendor/regorus#g" "$CHECK_TMP/diff" >&2
    exit 1
}

cmd_test() {
    local pristine=0
    if [ "${1:-}" = --pristine ]; then pristine=1; shift; fi
    local dir=${REGORUS_TEST_DIR:-/tmp/regorus-test-tree}
    local log=${REGORUS_TEST_LOG:-/tmp/regorus-test.log}
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/regorus-target}
    rm -rf "$dir"
    extract_pristine "$dir"
    local what="regorus $VERSION (published)"
    if [ $pristine = 0 ]; then
        what="regorus $VERSION + $(apply_series "$dir") patches"
    fi
    # Cargo decides freshness from file times against its last build in this target dir, and the
    # crate's files carry the archive's times (2006): a tree that changed back to older content (the
    # published crate after the patched one, or a patch dropped from the series) would be taken for
    # the last build. Touching every file makes each run compile the crate it tests.
    find "$dir" -type f -exec touch {} +
    echo "test: $what in $dir, features: $TEST_FEATURES, target dir $CARGO_TARGET_DIR, log $log"
    local start=$SECONDS rc=0
    # --no-fail-fast: every target runs; the crate's own Cargo.lock pins its dev-dependencies.
    # shellcheck disable=SC2086
    (cd "$dir" && cargo test --locked --no-fail-fast --no-default-features \
        --features "$TEST_FEATURES" ${REGORUS_TEST_ARGS:-} 2>&1) >"$log" || rc=$?
    summarize "$log"
    local secs=$((SECONDS - start))
    if grep -q -E '^error: could not compile|^error: no such|^error: failed to' "$log"; then
        echo "test: regorus's tests did not build ($secs s); see $log"
        return 1
    fi
    local failing unexpected fixed
    failing=$(failing_tests "$log")
    unexpected=$(comm -23 <(echo "$failing" | sed '/^$/d') <(expected_failures))
    fixed=$(comm -13 <(echo "$failing" | sed '/^$/d') <(expected_failures))
    local passed failed
    passed=$(awk '/^test result: /{for(i=1;i<=NF;i++) if($i ~ /^passed;?$/) s+=$(i-1)} END{print s+0}' "$log")
    failed=$(awk '/^test result: /{for(i=1;i<=NF;i++) if($i ~ /^failed;?$/) s+=$(i-1)} END{print s+0}' "$log")
    if [ -n "$fixed" ]; then
        echo "test: expected to fail but passed (remove from ${EXPECTED#"$ROOT"/}):"
        echo "$fixed" | sed 's/^/  /'
    fi
    if [ -n "$unexpected" ]; then
        echo "test: unexpected failures:"
        echo "$unexpected" | sed 's/^/  /'
        echo "test: $passed passed, $failed failed ($(echo "$unexpected" | wc -l) unexpected) in $secs s"
        return 1
    fi
    echo "regorus: $passed passed, $failed failed, every failure expected (they fail on the published crate" \
        "too, listed with their reasons in ${EXPECTED#"$ROOT"/}); $secs s"
    [ $rc = 0 ] || [ -n "$failing" ] || return $rc
    return 0
}

expected_failures() { grep -v '^[[:space:]]*\(#\|$\)' "$EXPECTED" | awk '{print $1}' | sort -u; }

failing_tests() {
    awk '/^failures:$/ { f = 1; next } f && /^    [A-Za-z_][A-Za-z0-9_:]*$/ { print $1 }
         /^test result:/ { f = 0 }' "$1" | sort -u
}

# One line per test target (its result line), then the failing tests.
summarize() {
    local log=$1
    awk '
        /^     Running / { target = $2 }
        /^   Doc-tests / { target = "doctests " $2 }
        /^test result: / { sub(/^test result: /, ""); printf "  %-60s %s\n", target, $0 }
    ' "$log"
    if grep -q '^failures:$' "$log"; then
        echo "failing tests:"
        failing_tests "$log" | sed 's/^/  /'
    fi
    # Build errors only (a failing case's own "error: ..." lines are in the log).
    grep -E '^error(\[|: could not compile|: no such|: failed to)' "$log" | sort -u | sed 's/^/  /' || true
}

case "${1:-}" in
check) shift; cmd_check "$@" ;;
apply) shift; cmd_apply "$@" ;;
test) shift; cmd_test "$@" ;;
pristine)
    tmp=$(mktemp -d)
    extract_pristine "$tmp/regorus-$VERSION"
    echo "$tmp/regorus-$VERSION"
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    [ -n "${1:-}" ] && exit 2 || exit 0
    ;;
esac
