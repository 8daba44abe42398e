#!/usr/bin/env bash
# Load test of `regate serve` over TLS with HTTP/1.1 keep-alive, at fixed request rates, side by side
# with a null-policy run of the same binary (`--no-bundled` with an empty policies directory), so the
# cost of the policies shows apart from the cost of TLS, HTTP and the AdmissionReview envelope.
#
# The server is pinned to one core and the load generator (oha) to the other with taskset. Traffic
# only goes to 127.0.0.1; every run is bounded in time. Not part of the test suite.
#
# Usage: scripts/loadtest.sh [RATE ...]            (default rates: 100 250 500 1000 2000)
#        RATE `max` is a closed loop: each connection sends its next review as soon as the last is
#        answered, which finds the maximum (e.g. `DURATION=30s scripts/loadtest.sh max`).
# Environment:
#   DURATION=10s        length of each run
#   CONNECTIONS=8       concurrent keep-alive connections of oha
#   WARMUP=0.5          seconds at the start of each run left out of the steady-state percentiles
#   REVIEW=FILE         the AdmissionReview to send (default: scripts/lib/pod-review.json, a Pod CREATE
#                       denied by the library)
#   REGATE=PATH         the regate binary (default: builds target/release/regate)
#   SERVER_CPU=0 LOAD_CPU=1
#
# oha comes from crates.io; when it is missing it is installed with `cargo install oha --locked`
# (about 20 minutes on 2 cores). The load generation is shared with scripts/bench-peers.sh
# (scripts/lib/loadgen.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 250 500 1000 2000)
SERVER_CPU=${SERVER_CPU:-0}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/loadgen.sh
. scripts/lib/loadgen.sh
loadgen_require

if [ -z "${REGATE:-}" ]; then
	cargo build --release --quiet
	REGATE=target/release/regate
fi

REVIEW=${REVIEW:-$LOADGEN_POD_REVIEW}

# Starts the server with "$@", waits until ready; sets SERVER_PID and PORT.
start_server() {
	local log="$WORK/server.log"
	: >"$log"
	# --cluster-settle 0: `--dev` holds static cluster state, which never changes, so re-evaluating a
	# denial by a cluster-state policy after the default 250 ms settle could only answer the same, 250 ms
	# later (the load test's Pod is such a denial).
	taskset -c "$SERVER_CPU" "$REGATE" serve --dev --addr 127.0.0.1:0 \
		--dev-ca-file "$WORK/ca.crt" --decision-log off --log-level warn,regate=info \
		--max-inflight 2 --cluster-settle 0 "$@" 2>"$log" &
	SERVER_PID=$!
	for _ in $(seq 1 600); do
		PORT=$(sed -n 's/.*regate serve listening.* addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
		[ -n "$PORT" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	[ -n "$PORT" ] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }
}

stop_server() {
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID" || true
	SERVER_PID=""
}

declare -A RESULT
EMPTY="$WORK/empty-policies"
mkdir -p "$EMPTY"
for mode in library null; do
	if [ "$mode" = library ]; then
		start_server
	else
		start_server --no-bundled --policies "$EMPTY" --allow-empty
	fi
	oha_warm "https://127.0.0.1:$PORT/validate" "$WORK/ca.crt" "$REVIEW"
	for rate in "${RATES[@]}"; do
		before=$(proc_ticks "$SERVER_PID")
		result=$(oha_run "https://127.0.0.1:$PORT/validate?timeout=10s" "$WORK/ca.crt" "$REVIEW" "$rate")
		after=$(proc_ticks "$SERVER_PID")
		read -r _ _ _ _ ok _ <<<"$result"
		cpu=$(cpu_per_review "$before" "$after" "$ok")
		RESULT[$mode,$rate]="$result $cpu"
		echo "  $mode @ $rate/s: ${RESULT[$mode,$rate]}" >&2
	done
	stop_server
done

echo
echo "regate serve load test: POST /validate over TLS 1.3, HTTP/1.1 keep-alive, $CONNECTIONS connections, $DURATION per rate"
echo "server on CPU $SERVER_CPU, oha on CPU $LOAD_CPU; 'library' = bundled policies, 'null' = no policies (same binary)"
echo
echo "p50/p99: steady state (requests started ${WARMUP}s or more into each run); p99all: the whole run;"
echo "cpu: the server's CPU time (user + system) per answered review, in µs"
echo
printf "%8s | %-50s | %-50s\n" "rate/s" "library: reviews/s p50ms p99ms p99all cpu (ok/err)" "null: reviews/s p50ms p99ms p99all cpu (ok/err)"
printf -- "---------+----------------------------------------------------+---------------------------------------------------\n"
for rate in "${RATES[@]}"; do
	read -r lr lp50 lp99 lp99a lok lerr lcpu <<<"${RESULT[library,$rate]}"
	read -r nr np50 np99 np99a nok nerr ncpu <<<"${RESULT[null,$rate]}"
	printf "%8s | %8s %8s %8s %8s %6s (%s/%s) | %8s %8s %8s %8s %6s (%s/%s)\n" "$rate" \
		"$lr" "$lp50" "$lp99" "$lp99a" "$lcpu" "$lok" "$lerr" "$nr" "$np50" "$np99" "$np99a" "$ncpu" "$nok" "$nerr"
done
