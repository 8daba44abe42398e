#!/usr/bin/env bash
# Fuzzing regate's parsers with cargo-fuzz (libFuzzer) on the stable toolchain. See docs/security.md,
# "Fuzzing".
#
#   scripts/fuzz.sh [build]              install cargo-fuzz (pinned) and build every target
#   scripts/fuzz.sh seeds                (re)write the seed corpora, fuzz/corpus/<target>/
#   scripts/fuzz.sh run TARGET SECONDS   fuzz one target for SECONDS (builds and seeds first)
#   scripts/fuzz.sh all SECONDS          fuzz every target for SECONDS each
#   scripts/fuzz.sh smoke                every target, reproducibly, for CI (see below)
#   scripts/fuzz.sh repro TARGET FILE    run one input (a crash artifact) through TARGET
#   scripts/fuzz.sh list                 the targets
#
# Targets are built without a sanitizer (`--sanitizer none`): AddressSanitizer needs nightly's
# `-Zsanitizer`, and regate's global allocator (mimalloc, src/memory.rs) keeps ASan from seeing Rust heap
# accesses anyway. Coverage instrumentation, debug assertions and overflow checks are on, and libFuzzer
# still finds panics, aborts, timeouts (-timeout) and memory blow-ups (-rss_limit_mb).
#
# FUZZ_NO_BUILD=1 skips the build step of run, all, smoke and repro (use the binaries already built).
#
# The smoke run is reproducible, so CI's verdict depends on the commit, not on luck: each target starts
# from the generated seeds alone (in a fresh directory; the corpora longer runs have grown are not
# read), with libFuzzer's random seed fixed (FUZZ_SMOKE_SEED, default 1) and a fixed number of executions
# (FUZZ_SMOKE_RUNS; by default 20000, and 3000 for `bundle`: about 50 s each for the slowest here). A
# time cap of FUZZ_SMOKE_MAX_SECONDS (default 120) per target only stops a run early on a much slower machine.
# Exploring is what `run` and `all` are for; what they find becomes a test in tests/fuzz_regressions.rs.
#
# A run exits non-zero when libFuzzer finds anything; the input is saved under
# fuzz/artifacts/<target>/ and the log says how to reproduce it.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
# Where the fuzz build goes (CI keeps it outside the fresh clone so a rebuild reuses the dependencies).
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$FUZZ/target}"
TARGETS=(admission_review manifest config bundle image_reference signature json_patch duration quantity)
# libFuzzer options for every run: a hang is an input that takes longer than 10 s, a blow-up one that
# needs more than 4 GiB.
LIBFUZZER_OPTS=(-timeout=10 -rss_limit_mb=4096 -print_final_stats=1)

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

ensure_cargo_fuzz() {
    if cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
        return
    fi
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
}

build() {
    ensure_cargo_fuzz
    (cd "$FUZZ" && cargo fuzz build --sanitizer none --target-dir "$FUZZ_TARGET_DIR" "$@")
}

seeds() {
    python3 "$ROOT/scripts/fuzz_seeds.py" "$ROOT"
}

check_target() {
    local t
    for t in "${TARGETS[@]}"; do
        [[ "$t" == "$1" ]] && return 0
    done
    echo "fuzz.sh: unknown target $1 (targets: ${TARGETS[*]})" >&2
    exit 2
}

binary() {
    echo "$FUZZ_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release/$1"
}

# run TARGET SECONDS: fuzz from the seed corpus; new interesting inputs are added to it.
run_one() {
    local target=$1 seconds=$2
    mkdir -p "$FUZZ/corpus/$target" "$FUZZ/artifacts/$target"
    echo "fuzz.sh: $target for ${seconds}s" >&2
    # The binary cargo fuzz built, run directly: `cargo fuzz run` would rebuild first, and the tree may
    # have changed since `build`.
    (cd "$FUZZ" && "$(binary "$target")" -artifact_prefix="artifacts/$target/" \
        -max_total_time="$seconds" "${LIBFUZZER_OPTS[@]}" "corpus/$target")
}

# smoke_runs TARGET: the executions of TARGET's smoke run. `bundle` compiles a Rego module per input
# (about 60 executions/s here once its corpus grows), so it gets fewer, to end well inside the cap.
smoke_runs() {
    if [[ -n "${FUZZ_SMOKE_RUNS:-}" ]]; then
        echo "$FUZZ_SMOKE_RUNS"
    elif [[ "$1" == bundle ]]; then
        echo 3000
    else
        echo 20000
    fi
}

# smoke_one TARGET SEEDS_DIR: the reproducible run of one target over a copy of its seeds.
smoke_one() {
    local target=$1 seeds=$2 runs
    runs=$(smoke_runs "$target")
    mkdir -p "$FUZZ/artifacts/$target"
    echo "fuzz.sh: smoke $target: $runs executions, seed ${FUZZ_SMOKE_SEED:-1}" >&2
    (cd "$FUZZ" && "$(binary "$target")" -artifact_prefix="artifacts/$target/" \
        -seed="${FUZZ_SMOKE_SEED:-1}" -runs="$runs" \
        -max_total_time="${FUZZ_SMOKE_MAX_SECONDS:-120}" "${LIBFUZZER_OPTS[@]}" "$seeds/$target")
}

# fuzz_targets RUNNER ARGS...: every target through RUNNER (run_one or smoke_one); fails if any fails.
fuzz_targets() {
    local runner=$1 failed=()
    shift
    local t
    for t in "${TARGETS[@]}"; do
        if ! "$runner" "$t" "$@"; then
            failed+=("$t")
        fi
    done
    if ((${#failed[@]})); then
        echo "fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
        return 1
    fi
    echo "fuzz.sh: ${#TARGETS[@]} targets ran, nothing found" >&2
}

cmd=${1:-build}
case "$cmd" in
build)
    build
    ;;
seeds)
    seeds
    ;;
list)
    printf '%s\n' "${TARGETS[@]}"
    ;;
run)
    [[ $# -eq 3 ]] || { echo "usage: $0 run TARGET SECONDS" >&2; exit 2; }
    check_target "$2"
    [[ -n "${FUZZ_NO_BUILD:-}" ]] || build "$2"
    [[ -d "$FUZZ/corpus/$2" ]] || seeds
    run_one "$2" "$3"
    ;;
all)
    [[ $# -eq 2 ]] || { echo "usage: $0 all SECONDS" >&2; exit 2; }
    [[ -n "${FUZZ_NO_BUILD:-}" ]] || build
    seeds
    fuzz_targets run_one "$2"
    ;;
smoke)
    [[ -n "${FUZZ_NO_BUILD:-}" ]] || build
    smoke_seeds="$(mktemp -d)"
    trap 'rm -rf "$smoke_seeds"' EXIT
    python3 "$ROOT/scripts/fuzz_seeds.py" "$ROOT" "$smoke_seeds"
    fuzz_targets smoke_one "$smoke_seeds"
    ;;
repro)
    [[ $# -eq 3 ]] || { echo "usage: $0 repro TARGET FILE" >&2; exit 2; }
    check_target "$2"
    [[ -n "${FUZZ_NO_BUILD:-}" ]] || build "$2"
    "$(binary "$2")" "$(realpath "$3")"
    ;;
*)
    echo "usage: $0 [build|seeds|list|run TARGET SECONDS|all SECONDS|smoke|repro TARGET FILE]" >&2
    exit 2
    ;;
esac
