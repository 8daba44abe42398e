# Load generation shared by scripts/loadtest.sh and scripts/bench-peers.sh (sourced, not run): oha over
# TLS with HTTP/1.1 keep-alive, pinned to LOAD_CPU, and the server's CPU time read from /proc.
#
# The caller sets DURATION, CONNECTIONS, WARMUP and LOAD_CPU (defaults below) and WORK (a scratch
# directory). oha comes from crates.io; when it is missing it is installed with
# `cargo install oha --locked` (about 20 minutes on 2 cores).

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
WARMUP=${WARMUP:-0.5}
LOAD_CPU=${LOAD_CPU:-1}
TICKS_PER_S=$(getconf CLK_TCK)

# The small Pod CREATE review of the load test (denied by the bundled library).
LOADGEN_POD_REVIEW="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pod-review.json"

loadgen_require() {
	if ! command -v oha >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/oha" ]; then
		export PATH="$HOME/.cargo/bin:$PATH"
	fi
	if ! command -v oha >/dev/null 2>&1; then
		echo "oha not found; installing it from crates.io (cargo install oha --locked)..." >&2
		cargo install oha --locked
		export PATH="$HOME/.cargo/bin:$PATH"
	fi
	command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 2; }
	command -v python3 >/dev/null || { echo "python3 is required to read oha's JSON" >&2; exit 2; }
}

# Warm-up before a measured run: connections, TLS sessions, evaluator pools (2 s at 100/s).
# Usage: oha_warm URL CACERT BODY
oha_warm() {
	taskset -c "$LOAD_CPU" oha --no-tui -z 2s -q 100 -c "$CONNECTIONS" -m POST -T application/json \
		-D "$3" --cacert "$2" "$1" >/dev/null 2>&1 || true
}

# One oha run of DURATION at a fixed RATE (`max`: closed loop, each connection sends its next request as
# soon as the last is answered); prints "rps p50_ms p99_ms p99_whole_ms ok errors" (ok: status 200).
# Usage: oha_run URL CACERT BODY RATE
#
# Latency percentiles are those of the steady state: requests that started WARMUP seconds or more
# after the run's first request. oha opens its connections when the run starts, and the first
# requests wait for that: ~65 ms on this machine, of which the server's part is ~7 ms (a new
# connection with its first review costs regate 1.4 ms of CPU, measured over 100 sequential curl calls).
# The permits that pile up meanwhile are then sent as a burst, which costs the next ~100 requests up to
# CONNECTIONS x the service time: at 1,000/s that alone was the whole-run p99. It is a cost of the load
# generator starting, not of a webhook behind keep-alive connections, so the whole-run p99 is printed
# beside the steady-state one. reviews/s is always over the whole run.
oha_run() {
	local url=$1 cacert=$2 body=$3 rate=$4
	local out db
	out=$(mktemp "$WORK/oha-XXXXXX.json")
	db="$out.db"
	# -w: requests still running at the end are waited for, not counted as errors.
	# --db-url: one row per successful request (start and duration), for the steady-state percentiles.
	local pace=(-q "$rate")
	[ "$rate" = max ] && pace=()
	taskset -c "$LOAD_CPU" oha --no-tui --output-format json -z "$DURATION" -w "${pace[@]}" \
		-c "$CONNECTIONS" -m POST -T application/json -D "$body" --cacert "$cacert" \
		--db-url "$db" "$url" >"$out" 2>/dev/null || true
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
	rm -f "$out" "$db"
}

# A process's CPU time (user + system) so far, in clock ticks (/proc/PID/stat fields 14 and 15).
proc_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# CPU per answered review in µs, from the ticks before and after a run (the clock tick is 10 ms; a
# run answers thousands). Usage: cpu_per_review BEFORE AFTER OK
cpu_per_review() {
	if [ "${3:-0}" -gt 0 ] 2>/dev/null; then
		echo $((($2 - $1) * 1000000 / TICKS_PER_S / $3))
	else
		echo -
	fi
}
