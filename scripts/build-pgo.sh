#!/usr/bin/env bash
# Profile-guided release build of regate: builds an instrumented binary, runs it over a workload made
# only of what is in this repository, merges the profiles and builds the release binary with them. The
# VM's dispatch and call paths are branchy; with the profile the server used a median 29 % less CPU per
# review over 15 alternated pairs (the runs are in the git history of docs/benchmarks.md). Containerfile
# builds the image's binary with it. Not part of the test suite.
#
# Usage: scripts/build-pgo.sh [OUT]        (default OUT: target/pgo/regate)
# CARGO_BUILD_TARGET (e.g. x86_64-unknown-linux-musl, as in Containerfile) builds for that target; the
# workload runs the instrumented binary, so the target must run on the build machine.
# Needs: llvm-profdata of the toolchain's LLVM (`rustup component add llvm-tools`), curl (drives the
# server over TLS keep-alive). Each build is a full release build (~10 minutes on 2 cores).
#
# The workload: the bundled Rego tests (`regate test`), `regate check` over testdata/manifests,
# `regate eval` of every AdmissionReview in testdata on both endpoints, and `regate serve --dev` answering
# those reviews and the load-test Pod over keep-alive connections.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/pgo/regate}

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
[ -x "$PROFDATA" ] || { echo "llvm-profdata not found: rustup component add llvm-tools" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is required to drive the server" >&2; exit 2; }

# With an explicit target, cargo puts the binary under target/<dir>/<triple>/release.
triple_dir=${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "1/4 instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$WORK/profiles" \
	cargo build --release --locked --bin regate --target-dir target/pgo-generate
BIN=target/pgo-generate/${triple_dir}release/regate

echo "2/4 workload" >&2
REVIEWS=$(grep -rl '"kind": *"AdmissionReview"' testdata --include '*.json' | sort)
"$BIN" test >/dev/null
"$BIN" check testdata/manifests -f json >/dev/null || true # findings and a broken file exit non-zero
for review in $REVIEWS; do
	"$BIN" eval --review "$review" >/dev/null || true # a denial exits 1
	"$BIN" eval --review "$review" --endpoint mutate >/dev/null || true
done
# The load-test Pod of scripts/loadtest.sh. --cluster-settle 0 as there: the static state of --dev never
# changes, so the 250 ms settle before a denial by a cluster-state policy is re-evaluated would only wait.
cp scripts/lib/pod-review.json "$WORK/pod.json"
"$BIN" serve --dev --addr 127.0.0.1:0 --dev-ca-file "$WORK/ca.crt" --decision-log off \
	--log-level warn,regate=info --cluster-settle 0 2>"$WORK/server.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 600); do
	PORT=$(sed -n 's/.*regate serve listening.* addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -n1)
	[ -n "$PORT" ] && break
	sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; exit 1; }
post() { # REVIEW PATH COUNT: COUNT requests over one keep-alive connection (curl's URL range)
	curl -s -o /dev/null --cacert "$WORK/ca.crt" -H 'Content-Type: application/json' \
		--data-binary "@$1" "https://127.0.0.1:$PORT/$2?n=[1-$3]"
}
post "$WORK/pod.json" validate 3000
post "$WORK/pod.json" mutate 500
for review in $REVIEWS; do
	post "$review" validate 20
	post "$review" mutate 20
done
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" # a clean exit writes the server's profile
SERVER_PID=""

echo "3/4 merge" >&2
"$PROFDATA" merge -o "$WORK/regate.profdata" "$WORK/profiles"

echo "4/4 optimized build" >&2
RUSTFLAGS="-Cprofile-use=$WORK/regate.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
	cargo build --release --locked --bin regate --target-dir target/pgo-use
mkdir -p "$(dirname "$OUT")"
cp "target/pgo-use/${triple_dir}release/regate" "$OUT"
echo "built $OUT" >&2
