#!/usr/bin/env bash
# Instructions per validated review, counted with valgrind (deterministic on a shared machine, unlike
# wall time): runs examples/policy_timing under callgrind with N=25 and N=225 reviews and divides the
# difference by 200, so loading the bundle is subtracted out. Not part of the test suite.
#
# Usage: scripts/count_instructions.sh [POLICY]     (a policy id, or `all` for the whole set; default all)
# Environment: REVIEW=FILE (default: the shared corpus's GKE Pod), BIN=path to a built policy_timing.
set -euo pipefail
cd "$(dirname "$0")/.."
POLICY=${1:-all}
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
	cargo build --release --quiet --example policy_timing
	BIN=target/release/examples/policy_timing
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
count() {
	# RUST_BACKTRACE=0: with backtraces on, regorus's parser captures one per backtracking step.
	RUST_BACKTRACE=0 POLICY=$POLICY N=$1 valgrind --tool=callgrind --callgrind-out-file="$WORK/out.$1" \
		"$BIN" >/dev/null 2>"$WORK/err.$1"
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$WORK/err.$1"
}
small=$(count 25)
large=$(count 225)
echo "$POLICY: $(((large - small) / 200)) instructions per review"
