#!/usr/bin/env bash
# regate beside the OPA server, on the same Rego and the same reviews, with regate's null-policy server
# as the floor: the figures at the top of docs/benchmarks.md.
#
# Servers, each pinned to one core (SERVER_CPU) with the load generator on the other (LOAD_CPU), over
# TLS 1.3 with HTTP/1.1 keep-alive and one ECDSA P-256 certificate made for the run:
#   regate  `regate serve --cluster-state static [--inventory FILE] --cluster-settle 0` with the bundled
#           library, POST /validate?timeout=10s with the AdmissionReview (static state never changes, so
#           the default 250 ms settle before a denial by a cluster-state policy is re-evaluated could only
#           delay the same answer)
#   opa     `opa run --server` (the pinned release of tests/opa, built by tests/opa/build.sh when missing)
#           with the bundled library's modules, regate.yaml as data.regate.config, the same cluster state
#           as data.inventory, and scripts/lib/peers/peer.rego, which applies the policies as regate's
#           engine does (systemNamespaces, match, enforcement, message format);
#           POST /v1/data/regate/peer/review with {"input": <the same AdmissionReview>}
#   null    regate with no policies (`--no-bundled --allow-empty`, an empty policies directory): TLS,
#           HTTP and the AdmissionReview envelope alone
# Reviews:
#   small   the Pod CREATE of scripts/loadtest.sh (scripts/lib/pod-review.json), empty cluster state; denied
#   gke     the shared corpus's captured GKE Pod CREATE (admission/reviews/kube-rs__gke_pod_create.json),
#           empty cluster state; denied
#   tenant  a compliant tenant Pod CREATE (scripts/lib/peers/tenant-review.json) with its namespace and
#           default-deny NetworkPolicy as cluster state (scripts/lib/peers/tenant-inventory.yaml); allowed
#
# Phases:
#   1. answers: each review is posted once to each server; regate's and OPA's `allowed`, status and deny
#      message must be equal (the script fails otherwise), warnings that differ are printed; the null
#      server must allow.
#   2. load: ROUNDS rounds; in each, every review goes to every server in turn (the order of the servers
#      rotates from round to round), a fresh server per run, 2 s of warm-up at 100/s, then a closed loop
#      of DURATION with CONNECTIONS connections. Per run: reviews/s, steady-state p50/p99, the server's
#      CPU (user + system) per answered review, and the 1-minute load average when the run started.
#   3. start: STARTS starts of each server (tenant cluster state) alternated: time from the fork to the
#      first 200 of the health endpoint (regate /readyz, OPA /health), then VmRSS and RssAnon IDLE_WAIT
#      seconds after the fork. regate runs the bundled library's Rego tests at start unless told not to,
#      so regate is also started with --skip-bundle-tests (OPA runs no tests).
#   4. check: CHECK_RUNS runs of `regate check --jobs 1` over the rendered chart corpus on SERVER_CPU:
#      objects per second of wall time and of CPU time.
# Then one table: medians, with [min-max] over the runs, and the load averages seen.
#
# Usage: scripts/bench-peers.sh
# Environment:
#   DURATION=10s  ROUNDS=3  STARTS=3  IDLE_WAIT=12  CHECK_RUNS=3  CONNECTIONS=8  WARMUP=0.5
#   REVIEWS="small gke tenant"   SERVERS="regate opa null"
#   REGATE=PATH   the regate binary (default: builds target/release/regate; the published figures use the
#                 profile-guided build of scripts/build-pgo.sh, say which one a figure is for)
#   OPA=PATH      the opa binary (default: target/opa/opa, built by tests/opa/build.sh when missing)
#   CORPUS=DIR    the shared corpus (default: ../shared/corpus)
#   SERVER_CPU=0 LOAD_CPU=1
#   KEEP=DIR      keep the raw results (results.tsv, starts.tsv, checks.tsv, answers) in DIR
# Traffic only goes to 127.0.0.1; every run is bounded in time. Not part of the test suite.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
STARTS=${STARTS:-3}
IDLE_WAIT=${IDLE_WAIT:-12}
CHECK_RUNS=${CHECK_RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0}
REVIEWS=${REVIEWS:-small gke tenant}
SERVERS=${SERVERS:-regate opa null}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
export RUST_BACKTRACE=0 # see docs/benchmarks.md, "Method": the parser's errors would capture backtraces

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP"
		cp -r "$WORK"/results.tsv "$WORK"/starts.tsv "$WORK"/checks.tsv "$WORK"/answers "$KEEP"/ 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/loadgen.sh
. scripts/lib/loadgen.sh
loadgen_require
command -v openssl >/dev/null || { echo "openssl is required for the test certificate" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "python3 with PyYAML is required" >&2; exit 2; }

if [ -z "${REGATE:-}" ]; then
	cargo build --release --quiet
	REGATE=target/release/regate
fi
if [ -z "${OPA:-}" ]; then
	OPA=target/opa/opa
	[ -x "$OPA" ] || bash tests/opa/build.sh "$ROOT/$OPA"
fi
GKE="$CORPUS/admission/reviews/kube-rs__gke_pod_create.json"
[ -f "$GKE" ] || { echo "$GKE not found (set CORPUS)" >&2; exit 2; }
CHARTS=("$CORPUS"/charts/*.yaml "$CORPUS"/charts/extra/*.yaml)

load1() { cut -d' ' -f1 /proc/loadavg; }

# --- fixtures -------------------------------------------------------------------------------------
TLS="$WORK/tls"
mkdir -p "$WORK/reviews" "$WORK/answers" "$WORK/empty-policies"
# shellcheck source=scripts/lib/bench-tls.sh
. "$ROOT/scripts/lib/bench-tls.sh"
make_bench_tls "$TLS" bench-peers-ca
CACERT="$TLS/ca.crt"

cp scripts/lib/pod-review.json "$WORK/reviews/small.json"
cp "$GKE" "$WORK/reviews/gke.json"
cp scripts/lib/peers/tenant-review.json "$WORK/reviews/tenant.json"
for r in $REVIEWS; do
	# OPA's data API takes the input wrapped; the review's bytes are sent unchanged inside.
	{ printf '{"input":'; cat "$WORK/reviews/$r.json"; printf '}'; } >"$WORK/reviews/$r.opa.json"
done
# Cluster state per review: empty (what `serve --dev`, and so scripts/loadtest.sh, runs with) or the tenant's.
state_of() { [ "$1" = tenant ] && echo tenant || echo empty; }
INVENTORY_tenant=scripts/lib/peers/tenant-inventory.yaml
for state in empty tenant; do
	inv=()
	[ "$state" = tenant ] && inv=("$INVENTORY_tenant")
	python3 scripts/lib/peers/opa_data.py "$OPA" policies "$WORK/opa-$state" "${inv[@]}"
	cp scripts/lib/peers/peer.rego "$WORK/opa-$state/peer.rego"
done

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sets CMD (the server's command line, pinned), URL (the review endpoint), HEALTH and BODY_SUFFIX for
# server $1 with cluster state $2, on port $3.
server_command() {
	local server=$1 state=$2 port=$3
	local inv=()
	[ "$state" = tenant ] && inv=(--inventory "$INVENTORY_tenant")
	case "$server" in
	regate | regate-notests | null)
		CMD=(taskset -c "$SERVER_CPU" "$REGATE" serve --addr "127.0.0.1:$port" --tls-dir "$TLS"
			--cluster-state static "${inv[@]}" --cluster-settle 0 --decision-log off --log-level warn
			--max-inflight 2)
		[ "$server" = null ] && CMD+=(--no-bundled --policies "$WORK/empty-policies" --allow-empty)
		[ "$server" = regate-notests ] && CMD+=(--skip-bundle-tests)
		URL="https://127.0.0.1:$port/validate?timeout=10s"
		HEALTH="https://127.0.0.1:$port/readyz"
		BODY_SUFFIX=".json"
		;;
	opa)
		CMD=(taskset -c "$SERVER_CPU" "$OPA" run --server --addr "127.0.0.1:$port"
			--tls-cert-file "$TLS/tls.crt" --tls-private-key-file "$TLS/tls.key"
			--disable-telemetry --log-level error "$WORK/opa-$state")
		URL="https://127.0.0.1:$port/v1/data/regate/peer/review"
		HEALTH="https://127.0.0.1:$port/health"
		BODY_SUFFIX=".opa.json"
		;;
	*) echo "unknown server $server" >&2; exit 2 ;;
	esac
}

# Starts server $1 with cluster state $2 and waits for its health endpoint; sets SERVER_PID, URL,
# BODY_SUFFIX.
start_server() {
	local port
	port=$(free_port)
	server_command "$1" "$2" "$port"
	"${CMD[@]}" >"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 600); do
		curl -sf --cacert "$CACERT" -o /dev/null "$HEALTH" && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
		sleep 0.05
	done
	echo "$1 did not become ready" >&2
	cat "$WORK/server.log" >&2
	exit 1
}

stop_server() {
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID" || true
	SERVER_PID=""
}

post() { # URL BODY OUT
	curl -sS --cacert "$CACERT" -H 'Content-Type: application/json' --data-binary "@$2" -o "$3" "$1"
}

# --- 1. the same answers ------------------------------------------------------------------------------
echo "== answers: each review once to each server" >&2
for r in $REVIEWS; do
	state=$(state_of "$r")
	for s in $SERVERS; do
		start_server "$s" "$state"
		post "$URL" "$WORK/reviews/$r$BODY_SUFFIX" "$WORK/answers/$r.$s.json"
		stop_server
	done
	python3 - "$WORK/answers" "$r" "$SERVERS" <<'EOF' >&2
import json, os, sys
folder, review, servers = sys.argv[1], sys.argv[2], sys.argv[3].split()
def load(server):
    doc = json.load(open(os.path.join(folder, f"{review}.{server}.json")))
    return doc["result"]["response"] if server == "opa" else doc["response"]
answers = {s: load(s) for s in servers}
if "null" in answers and answers["null"].get("allowed") is not True:
    sys.exit(f"{review}: the null server did not allow: {answers['null']}")
if "regate" in answers:
    reg = answers["regate"]
    denied = len((reg.get("status") or {}).get("message", "").split("; ")) if not reg["allowed"] else 0
    print(f"  {review}: regate allowed={reg['allowed']} deny messages={denied} warnings={len(reg.get('warnings', []))}")
if "regate" in answers and "opa" in answers:
    reg, opa = answers["regate"], answers["opa"]
    for key in ("uid", "allowed", "status"):
        if reg.get(key) != opa.get(key):
            sys.exit(f"{review}: regate and OPA disagree on {key}:\n  regate: {reg.get(key)}\n  opa:    {opa.get(key)}")
    print(f"  {review}: OPA gives the same uid, allowed, status and deny message")
    rw, ow = reg.get("warnings", []), opa.get("warnings", [])
    if rw != ow:
        print(f"  {review}: the warnings differ (not a failure; see docs/benchmarks.md):")
        for w in rw:
            if w not in ow:
                print(f"    regate only: {w}")
        for w in ow:
            if w not in rw:
                print(f"    OPA only:    {w}")
EOF
done

# --- 2. load --------------------------------------------------------------------------------------------
printf 'round\treview\tserver\trps\tp50\tp99\tp99all\tok\terrors\tcpu_us\tload1\n' >"$WORK/results.tsv"
read -r -a server_list <<<"$SERVERS"
n=${#server_list[@]}
for round in $(seq 1 "$ROUNDS"); do
	for r in $REVIEWS; do
		state=$(state_of "$r")
		for i in $(seq 0 $((n - 1))); do
			s=${server_list[$(((i + round - 1) % n))]}
			start_server "$s" "$state"
			body="$WORK/reviews/$r$BODY_SUFFIX"
			oha_warm "$URL" "$CACERT" "$body"
			load=$(load1)
			before=$(proc_ticks "$SERVER_PID")
			result=$(oha_run "$URL" "$CACERT" "$body" max)
			after=$(proc_ticks "$SERVER_PID")
			stop_server
			read -r rps p50 p99 p99all ok errors <<<"$result"
			cpu=$(cpu_per_review "$before" "$after" "$ok")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$r" "$s" "$rps" "$p50" "$p99" \
				"$p99all" "$ok" "$errors" "$cpu" "$load" >>"$WORK/results.tsv"
			echo "  round $round $r $s: $rps reviews/s p50 $p50 ms p99 $p99 ms cpu $cpu µs (ok $ok, errors $errors; load $load)" >&2
		done
	done
done

# --- 3. cold start and idle memory -----------------------------------------------------------------------
printf 'run\tserver\tready_ms\tvmrss_kib\trssanon_kib\tload1\n' >"$WORK/starts.tsv"
start_servers=()
for s in $SERVERS; do
	start_servers+=("$s")
	[ "$s" = regate ] && start_servers+=(regate-notests)
done
for run in $(seq 1 "$STARTS"); do
	for s in "${start_servers[@]}"; do
		port=$(free_port)
		server_command "$s" tenant "$port"
		load=$(load1)
		out=$(taskset -c "$LOAD_CPU" python3 scripts/lib/peers/start_ready.py "$HEALTH" "$CACERT" "$IDLE_WAIT" -- "${CMD[@]}")
		read -r ready rss anon <<<"$out"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$s" "$ready" "$rss" "$anon" "$load" >>"$WORK/starts.tsv"
		echo "  start $run $s: ready after $ready ms, VmRSS $rss KiB, RssAnon $anon KiB (load $load)" >&2
	done
done

# --- 4. regate check over the chart corpus ----------------------------------------------------------------
printf 'run\tobjects\twall_s\tcpu_s\tmaxrss_kib\tload1\n' >"$WORK/checks.tsv"
for run in $(seq 1 "$CHECK_RUNS"); do
	load=$(load1)
	set +e
	taskset -c "$SERVER_CPU" /usr/bin/time -o "$WORK/check.time" -f '%e %U %S %M' \
		"$REGATE" check "${CHARTS[@]}" -f json --jobs 1 >"$WORK/check.json" 2>"$WORK/check.err"
	rc=$?
	set -e
	[ "$rc" -le 1 ] || { cat "$WORK/check.err" >&2; echo "regate check failed ($rc)" >&2; exit 1; }
	objects=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["objects"])' "$WORK/check.json")
	read -r wall user sys maxrss <<<"$(tail -n1 "$WORK/check.time")"
	cpu=$(python3 -c "print(f'{$user + $sys:.2f}')")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$objects" "$wall" "$cpu" "$maxrss" "$load" >>"$WORK/checks.tsv"
	echo "  check $run: $objects objects in $wall s wall, $cpu s CPU, peak RSS $maxrss KiB (load $load)" >&2
done

# --- the table --------------------------------------------------------------------------------------------
echo
echo "regate $("$REGATE" --version 2>/dev/null | head -n1) ($REGATE) beside $("$OPA" version | head -n1 | sed 's/Version: /OPA /') ($OPA)"
echo "server on CPU $SERVER_CPU, oha on CPU $LOAD_CPU; TLS 1.3, HTTP/1.1 keep-alive, $CONNECTIONS connections, closed loop, $DURATION per run, $ROUNDS rounds"
echo "each cell: median [min-max] over the runs; p50/p99 over requests started ${WARMUP}s or more into a run; cpu: the"
echo "server's user+system CPU per answered review; load: the 1-minute load average at the start of each run"
echo
python3 - "$WORK/results.tsv" "$WORK/starts.tsv" "$WORK/checks.tsv" "$REVIEWS" "$SERVERS" <<'EOF'
import csv, statistics, sys
results, starts, checks = (list(csv.DictReader(open(f), delimiter="\t")) for f in sys.argv[1:4])
reviews, servers = sys.argv[4].split(), sys.argv[5].split()

def cell(rows, key, fmt="{:.0f}"):
    vals = []
    for row in rows:
        try:
            vals.append(float(row[key]))
        except (ValueError, KeyError):
            pass
    if not vals:
        return "-"
    med = statistics.median(vals)
    return f"{fmt.format(med)} [{fmt.format(min(vals))}-{fmt.format(max(vals))}]"

def loads(rows):
    vals = sorted(float(r["load1"]) for r in rows)
    return f"{vals[0]:.2f}-{vals[-1]:.2f}" if vals else "-"

head = f"{'review':8} {'server':8} {'reviews/s':>22} {'p50 ms':>22} {'p99 ms':>22} {'cpu µs/review':>18} {'errors':>6}  load"
print(head)
print("-" * len(head))
for r in reviews:
    for s in servers:
        rows = [x for x in results if x["review"] == r and x["server"] == s]
        errors = sum(int(x["errors"]) for x in rows if x["errors"].isdigit()) if rows else 0
        print(f"{r:8} {s:8} {cell(rows, 'rps'):>22} {cell(rows, 'p50', '{:.2f}'):>22} "
              f"{cell(rows, 'p99', '{:.2f}'):>22} {cell(rows, 'cpu_us'):>18} {errors:>6}  {loads(rows)}")
print()
print(f"{'server':16} {'cold start ms':>20} {'idle VmRSS MiB':>20} {'idle RssAnon MiB':>20}  load")
for s in dict.fromkeys(x["server"] for x in starts):
    rows = [x for x in starts if x["server"] == s]
    mib = [dict(x, vmrss=float(x["vmrss_kib"]) / 1024, anon=float(x["rssanon_kib"]) / 1024) for x in rows]
    print(f"{s:16} {cell(rows, 'ready_ms'):>20} {cell(mib, 'vmrss', '{:.1f}'):>20} {cell(mib, 'anon', '{:.1f}'):>20}  {loads(rows)}")
print("(cold start: fork to the first 200 of /readyz (regate) or /health (OPA), tenant cluster state; regate runs the")
print(" bundled library's Rego tests at start, regate-notests is started with --skip-bundle-tests; idle RSS read")
print(" after the idle wait from the fork)")
if checks:
    print()
    rate = [dict(x, per_wall=int(x["objects"]) / float(x["wall_s"]), per_cpu=int(x["objects"]) / float(x["cpu_s"]),
                 rss=float(x["maxrss_kib"]) / 1024) for x in checks]
    print(f"regate check --jobs 1 over the chart corpus ({checks[0]['objects']} objects): "
          f"{cell(rate, 'per_wall')} objects/s of wall time, {cell(rate, 'per_cpu')} objects/s of CPU time, "
          f"peak RSS {cell(rate, 'rss', '{:.0f}')} MiB; load {loads(checks)}")
EOF
