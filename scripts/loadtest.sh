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
#   REVIEW=FILE         the AdmissionReview to send (default: a Pod CREATE, denied by the library)
#   REGATE=PATH         the regate binary (default: builds target/release/regate)
#   SERVER_CPU=0 LOAD_CPU=1
#
# oha comes from crates.io; when it is missing it is installed with `cargo install oha --locked`
# (about 20 minutes on 2 cores).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 250 500 1000 2000)
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
WARMUP=${WARMUP:-0.5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

if ! command -v oha >/dev/null 2>&1; then
	echo "oha not found; installing it from crates.io (cargo install oha --locked)..." >&2
	cargo install oha --locked
	export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required to read oha's JSON" >&2; exit 2; }

if [ -z "${REGATE:-}" ]; then
	cargo build --release --quiet
	REGATE=target/release/regate
fi

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

if [ -z "${REVIEW:-}" ]; then
	REVIEW="$WORK/review.json"
	cat >"$REVIEW" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"0b5d1c8e-1f0a-4e7e-9d53-3f1d2c9a7b11",
 "kind":{"group":"","version":"v1","kind":"Pod"},
 "resource":{"group":"","version":"v1","resource":"pods"},
 "requestKind":{"group":"","version":"v1","kind":"Pod"},
 "requestResource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"shop","operation":"CREATE",
 "userInfo":{"username":"alice","groups":["tenant:shop","system:authenticated"]},
 "object":{"apiVersion":"v1","kind":"Pod",
  "metadata":{"name":"web","namespace":"shop","labels":{"app":"web","regate.dev/tenant":"shop"}},
  "spec":{"containers":[{"name":"app","image":"harbor.example.eu/shop/web:1.4.2",
   "resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},
   "securityContext":{"runAsNonRoot":true,"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},
    "seccompProfile":{"type":"RuntimeDefault"}}}]}},
 "oldObject":null,"dryRun":false,
 "options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}
EOF
fi

# Starts the server with "$@", waits until ready; sets SERVER_PID and PORT.
start_server() {
	local log="$WORK/server.log"
	: >"$log"
	taskset -c "$SERVER_CPU" "$REGATE" serve --dev --addr 127.0.0.1:0 \
		--dev-ca-file "$WORK/ca.crt" --decision-log off --log-level warn,regate=info \
		--max-inflight 2 "$@" 2>"$log" &
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

# One oha run at a fixed rate; prints "rps p50_ms p99_ms p99_whole_ms ok errors".
# Latency percentiles are those of the steady state: requests that started WARMUP seconds or more
# after the run's first request. oha opens its connections when the run starts, and the first
# requests wait for that: ~65 ms on this machine, of which the server's part is ~7 ms (a new
# connection with its first review costs it 1.4 ms of CPU, measured over 100 sequential curl calls).
# The permits that pile up meanwhile are then sent as a burst, which costs the next ~100 requests up to
# CONNECTIONS x the service time: at 1,000/s that alone was the whole-run p99. It is a cost of the load
# generator starting, not of a webhook behind keep-alive connections, so the whole-run p99 is printed
# beside the steady-state one. reviews/s is always over the whole run.
run_rate() {
	local rate=$1 out="$WORK/oha-$1.json" db="$WORK/oha-$1.db"
	rm -f "$db"
	# -w: requests still running at the end are waited for, not counted as errors.
	# --db-url: one row per successful request (start and duration), for the steady-state percentiles.
	local pace=(-q "$rate")
	[ "$rate" = max ] && pace=()
	taskset -c "$LOAD_CPU" oha --no-tui --output-format json -z "$DURATION" -w "${pace[@]}" \
		-c "$CONNECTIONS" -m POST -T application/json -D "$REVIEW" --cacert "$WORK/ca.crt" \
		--db-url "$db" "https://127.0.0.1:$PORT/validate?timeout=10s" >"$out" 2>/dev/null || true
	python3 - "$out" "$db" "$WARMUP" <<'EOF'
import json, sqlite3, sys
try:
    r = json.load(open(sys.argv[1]))
    rows = sqlite3.connect(sys.argv[2]).execute("select start, duration from oha").fetchall()
except Exception:
    print("- - - - 0 run-failed"); sys.exit()
s = r.get("summary", {})
p = r.get("latencyPercentiles", {})
codes = r.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if str(k) == "200")
errors = sum(r.get("errorDistribution", {}).values())
errors += sum(v for k, v in codes.items() if str(k) != "200")
first = min((start for start, _ in rows), default=0.0)
steady = sorted(d for start, d in rows if start - first >= float(sys.argv[3]))
def pct(q):
    return steady[min(len(steady) - 1, int(q * len(steady)))] if steady else None
ms = lambda v: "-" if v is None else f"{v * 1000:.2f}"
print(f"{s.get('requestsPerSec', 0):.0f} {ms(pct(0.50))} {ms(pct(0.99))} {ms(p.get('p99'))} {ok} {errors}")
EOF
}

# The server's CPU time (user + system) so far, in clock ticks (/proc/PID/stat fields 14 and 15).
server_ticks() {
	awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}
TICKS_PER_S=$(getconf CLK_TCK)

declare -A RESULT
EMPTY="$WORK/empty-policies"
mkdir -p "$EMPTY"
for mode in library null; do
	if [ "$mode" = library ]; then
		start_server
	else
		start_server --no-bundled --policies "$EMPTY" --allow-empty
	fi
	# Warm-up: connections, TLS sessions, evaluator pools.
	taskset -c "$LOAD_CPU" oha --no-tui -z 2s -q 100 -c "$CONNECTIONS" -m POST -T application/json \
		-D "$REVIEW" --cacert "$WORK/ca.crt" "https://127.0.0.1:$PORT/validate" >/dev/null 2>&1 || true
	for rate in "${RATES[@]}"; do
		before=$(server_ticks)
		result=$(run_rate "$rate")
		after=$(server_ticks)
		# Server CPU per answered review, in µs (the clock tick is 10 ms; a run answers thousands).
		read -r _ _ _ _ ok _ <<<"$result"
		cpu="-"
		[ "${ok:-0}" -gt 0 ] 2>/dev/null && cpu=$(((after - before) * 1000000 / TICKS_PER_S / ok))
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
