#!/usr/bin/env bash
# The background audit against a real API server holding a large synthetic cluster: `regate audit`
# (objects/s, peak RSS) and `regate serve --audit-interval` (peak RSS, audit duration, and the admission
# latency with and without an audit running): the "Audit" figures of docs/benchmarks.md.
#
# The cluster is the e2e harness's control plane (tests/e2e: embedded etcd, kube-apiserver and
# kube-controller-manager of the pinned Kubernetes release on 127.0.0.1; no scheduler, so the Pods stay
# Pending). For each size N of SIZES, in increasing order, on one control plane:
#   seed     Pods are added up to N (scripts/lib/audit/seed.py: THREADS keep-alive connections POSTing one
#            Pod each; kubectl would be held to 5 requests/s by client-go's default rate limit) across
#            NAMESPACES namespaces, the even ones labelled regate.dev/tenant, one Pod in PRIVILEGED_EVERY
#            privileged (pod-security denies it), the others the e2e tests' compliant Pod.
#   cli      `regate audit --kubeconfig KC -f F --page-size P --api-qps 0` for each P of PAGE_SIZES and F
#            of FORMATS, under /usr/bin/time: objects judged (the per-kind counts on stderr), wall time,
#            objects/s, peak RSS. A JSON report goes to a file and is checked: the Pods listed must be N
#            and the Pods denied exactly the privileged ones.
#   serve    `regate serve --cluster-state kube --audit-interval 1s --audit-api-qps 0 --audit-reports off`
#            with the admin kubeconfig (KUBECONFIG): VmHWM and VmRSS once ready, then after the first and
#            the second complete audit (regate_audit_runs_total{result="success"}), with
#            regate_audit_duration_seconds and regate_audit_objects.
#   latency  LATENCY_ROUNDS rounds of two runs, a fresh server each: without the audit, then with
#            `--audit-interval 1s --audit-api-qps 0 --audit-reports off` (an audit of N objects runs
#            back to back, started before the load). The server is pinned to SERVER_CPU; oha to LOAD_CPU,
#            2 s warm-up at 100/s, then the small Pod review of scripts/loadtest.sh
#            (scripts/lib/pod-review.json) POSTed to /validate?timeout=10s at LOAD_RATE/s for DURATION
#            over CONNECTIONS keep-alive TLS connections: steady-state p50/p99, the server's CPU, and how
#            many 0.25 s samples of the run found the audit thread (regate-audit) alive. During the
#            latency runs the control plane is moved to LOAD_CPU at nice 10 with time slices of
#            CP_SLICE_US µs, so the server's core only holds regate (as in a cluster, where the API
#            server runs elsewhere) and the load generator is not held up by the API server's work for
#            the audit: Linux lets a running thread finish a protected part of its slice before a woken
#            thread runs, unless the woken thread's slice is shorter (oha's is the default, 1.4 ms on
#            two CPUs). With BASELINE set, each run is made with each BASELINE binary and then REGATE,
#            alternated, so builds compare on the same machine and cluster. Each run with an audit records the audit thread's time slice
#            (se.slice of /proc/PID/task/TID/sched, in µs).
#   reports  when N is in REPORT_SIZES: the openreports CRDs (testdata/crds/openreports) are installed and
#            `regate audit --write-reports --report-results REPORT_RESULTS --api-qps 0 -f json
#            --page-size 500` runs REPORT_RUNS times: the first writes every report, the next find them
#            unchanged (a run that exits 2, e.g. a list outliving the API server's compaction, is recorded
#            with its errors and the next run goes on).
#            REPORT_RESULTS leaves out `skip` by default, as the published figures were taken (before
#            cf20105 the reports themselves were audited; see docs/benchmarks.md, "Audit"). When N
#            is in SERVE_REPORT_SIZES, the serve measurement is repeated with reports written (--audit-reports openreports --audit-report-results
#            REPORT_RESULTS), with the reports each audit wrote and found unchanged (from its log). Then
#            the CRDs are deleted with their reports (unless N is the last size), so a larger size audits
#            Pods, not reports.
# Both servers use --cluster-settle 0 (see docs/benchmarks.md, "Method": the review's denial does not
# wait for a change in flight) and --decision-log off.
#
# Usage: scripts/bench-audit.sh
# Environment:
#   SIZES="10000 100000"  PAGE_SIZES="500 100"  FORMATS=json  (-f of the CLI audits; Pods checked in json)
#   REPORT_SIZES="10000 100000"  SERVE_REPORT_SIZES="10000"  REPORT_RESULTS=pass,fail,warn,error
#   REPORT_RUNS=2         `regate audit --write-reports` runs per size in REPORT_SIZES
#   NAMESPACES=10  PRIVILEGED_EVERY=10  THREADS=8
#   LATENCY_MODES="none running"  running-idle adds a run with the audit running and each audit thread
#                  moved from nice 19 to SCHED_IDLE by the script (chrt --idle), a diagnostic
#   LOAD_RATE=500  DURATION=15s  LATENCY_ROUNDS=2  CONNECTIONS=8  WARMUP=0.5  SERVER_CPU=0 LOAD_CPU=1
#   CP_SLICE_US=100000  the control plane's time slice during the latency runs (0: the kernel's default)
#   AUDIT_TIMEOUT=1800    seconds any one audit (CLI or in the server) may take before the script fails
#   REGATE=PATH    the regate binary (default: builds $CARGO_TARGET_DIR/release/regate, a plain release build)
#   BASELINE="PATH ..."  other regate binaries for the latency runs, each labelled with its file name
#                  (REGATE is labelled this)
#   TESTENV=PATH   the e2e harness (default: $CARGO_TARGET_DIR/e2e/testenv, built by tests/e2e/build.sh
#                  when missing: ~10 min cold on 2 cores)
#   KEEP=DIR       keep the raw results (*.tsv) and the control plane's and servers' logs in DIR
# Needs Go (for the harness, unless TESTENV is given), oha (installed with `cargo install oha --locked`
# when missing), taskset, openssl, curl, python3 with PyYAML, /usr/bin/time. etcd's data for 100,000 Pods
# takes ~1 GiB under TMPDIR. Traffic only goes to 127.0.0.1; every wait is bounded. Not part of the test
# suite.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SIZES=${SIZES:-10000 100000}
REPORT_SIZES=${REPORT_SIZES-10000 100000} # empty: none
REPORT_RESULTS=${REPORT_RESULTS:-pass,fail,warn,error}
SERVE_REPORT_SIZES=${SERVE_REPORT_SIZES-10000}
REPORT_RUNS=${REPORT_RUNS:-2}
FORMATS=${FORMATS:-json}
LATENCY_MODES=${LATENCY_MODES:-none running}
PAGE_SIZES=${PAGE_SIZES:-500 100}
NAMESPACES=${NAMESPACES:-10}
PRIVILEGED_EVERY=${PRIVILEGED_EVERY:-10}
THREADS=${THREADS:-8}
LOAD_RATE=${LOAD_RATE:-500}
DURATION=${DURATION:-15s}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-2}
AUDIT_TIMEOUT=${AUDIT_TIMEOUT:-1800}
SERVER_CPU=${SERVER_CPU:-0}
CP_SLICE_US=${CP_SLICE_US:-100000}
export RUST_BACKTRACE=0 # see docs/benchmarks.md, "Method"

WORK=$(mktemp -d)
SERVER_PID=""
CP_PID=""
SAMPLER_PID=""
IDLER_PID=""
stop_pid() { # PID [seconds]: SIGTERM, then SIGKILL after the grace period
	local pid=$1 grace=${2:-30}
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((grace * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	[ -n "$SAMPLER_PID" ] && stop_pid "$SAMPLER_PID" 2
	[ -n "$IDLER_PID" ] && stop_pid "$IDLER_PID" 2
	[ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID" 10
	[ -n "$CP_PID" ] && stop_pid "$CP_PID" 30
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP"
		cp "$WORK"/*.tsv "$WORK"/*.log "$KEEP"/ 2>/dev/null || true
		cp "$WORK"/cp/*.log "$KEEP"/ 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/loadgen.sh
. scripts/lib/loadgen.sh
loadgen_require
command -v openssl >/dev/null || { echo "openssl is required for the test certificate" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is required" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "python3 with PyYAML is required" >&2; exit 2; }

if [ -z "${REGATE:-}" ]; then
	cargo build --release --quiet
	REGATE=$TARGET/release/regate
fi
if [ -z "${TESTENV:-}" ]; then
	TESTENV=$TARGET/e2e/testenv
	[ -x "$TESTENV" ] || bash tests/e2e/build.sh "$TESTENV"
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # PID VmHWM|VmRSS
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the serving certificate (as scripts/bench-peers.sh makes it) ---------------------------------------
TLS="$WORK/tls"
# shellcheck source=scripts/lib/bench-tls.sh
. "$ROOT/scripts/lib/bench-tls.sh"
make_bench_tls "$TLS" bench-audit-ca
CACERT="$TLS/ca.crt"

# --- the control plane ---------------------------------------------------------------------------------
echo "== control plane: $TESTENV up" >&2
mkdir -p "$WORK/cp"
"$TESTENV" up --dir "$WORK/cp" >"$WORK/testenv.log" 2>&1 &
CP_PID=$!
READY=""
for _ in $(seq 1 2400); do
	READY=$(sed -n 's/^READY //p' "$WORK/testenv.log" | head -n1)
	[ -n "$READY" ] && break
	kill -0 "$CP_PID" 2>/dev/null || { tail -n 30 "$WORK/testenv.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$READY" ] || { echo "the control plane was not ready within 240 s" >&2; exit 1; }
KC=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["kubeconfig"])' "$READY")
kubectl() { "$TESTENV" kubectl --kubeconfig "$KC" "$@"; }

# The control plane's processes: testenv up (etcd) and its children (kube-apiserver, the controller manager).
cp_pids() { echo "$CP_PID"; pgrep -P "$CP_PID" || true; }
# Moves every thread of the control plane to CPUs $1 at nice $2 with time slices of $3 µs (0: the
# kernel's default; custom slices need Linux 6.12 or later and are ignored before).
cp_place() {
	local pid
	for pid in $(cp_pids); do
		taskset -a -p -c "$1" "$pid" >/dev/null
		python3 scripts/lib/sched-slice.py "$2" "$3" /proc/"$pid"/task/*
	done
}
ALL_CPUS=$(taskset -p $$ | sed 's/.*: //')
ALL_CPUS=$(python3 -c "m = int('$ALL_CPUS', 16); print(','.join(str(i) for i in range(64) if m >> i & 1))")

REPORT_CRDS_INSTALLED=0
install_report_crds() {
	kubectl apply --server-side -f testdata/crds/openreports >/dev/null
	kubectl wait --for=condition=Established --timeout=60s \
		crd/reports.openreports.io crd/clusterreports.openreports.io >/dev/null
	# Established is not yet listable: for some seconds the API server answers 429 "storage is
	# (re)initializing", which `regate audit` does not retry (kubectl does, so it is not the probe).
	local deadline=$((SECONDS + 60))
	until python3 scripts/lib/audit/seed.py "$KC" --probe /apis/openreports.io/v1alpha1/reports?limit=1 &&
		python3 scripts/lib/audit/seed.py "$KC" --probe /apis/openreports.io/v1alpha1/clusterreports?limit=1; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "the report CRDs are not listable within 60 s" >&2; exit 1; }
		sleep 0.5
	done
	REPORT_CRDS_INSTALLED=1
}
delete_report_crds() {
	local started
	started=$(now)
	kubectl delete --timeout=900s crd/reports.openreports.io crd/clusterreports.openreports.io >/dev/null
	REPORT_CRDS_INSTALLED=0
	echo "  report CRDs and their reports deleted in $(elapsed "$started" "$(now)") s" >&2
}

printf 'size\tadded\tseconds\tload1\n' >"$WORK/seed.tsv"
printf 'size\trun\tpage\tpods\tobjects\twall_s\tcpu_s\tmaxrss_kib\twritten\tunchanged\texit\terrors\tload1\n' >"$WORK/cli.tsv"
printf 'size\treports\tstage\thwm_kib\trss_kib\tduration_s\tobjects\twritten\tunchanged\tload1\n' >"$WORK/serve.tsv"
printf 'size\tround\tbinary\taudit\tslice_us\trps\tp50\tp99\tp99all\tok\terrors\tcpu_us\taudit_samples\tsamples\taudits_done\thwm_kib\tload1\n' >"$WORK/latency.tsv"

privileged_count() { # N: privileged Pods among p-0 .. p-(N-1)
	python3 -c "import sys; n, ns, k = map(int, sys.argv[1:]); print(sum(1 for i in range(n) if (i // ns) % k == 0))" \
		"$1" "$NAMESPACES" "$PRIVILEGED_EVERY"
}

# One `regate audit`; $1 size, $2 run label, $3 page size, then extra flags. Appends to cli.tsv.
cli_audit() {
	local size=$1 run=$2 page=$3 format=$4
	shift 4
	local load rc out="$WORK/audit.json" err="$WORK/audit.err"
	load=$(load1)
	set +e
	timeout "$AUDIT_TIMEOUT" /usr/bin/time -o "$WORK/audit.time" -f '%e %U %S %M' \
		"$REGATE" audit --kubeconfig "$KC" -f "$format" --page-size "$page" --api-qps 0 "$@" >"$out" 2>"$err"
	rc=$?
	set -e
	if [ "$rc" -gt 2 ] || ! grep -q '^audit: v1 Pod: ' "$err"; then
		echo "regate audit $* exited $rc:" >&2
		tail -n 30 "$err" >&2
		exit 1
	fi
	# Exit 2: some kind could not be listed to its end or a report not written; recorded, not fatal
	# (a list that outlives the API server's compaction interval ends with 410 Gone, see docs/audit.md).
	local errors=""
	if [ "$rc" = 2 ] && [ "$format" = json ]; then
		errors=$(python3 -c 'import json, sys; print("; ".join(e["message"] for e in json.load(open(sys.argv[1])).get("errors", [])))' "$out")
		echo "  regate audit exited 2: $errors" >&2
		grep -v '^audit: .* objects in [0-9]* pages$' "$err" | grep -v '^audit: .*: skipped (' >&2 || true
	fi
	read -r wall user sys maxrss <<<"$(tail -n1 "$WORK/audit.time")"
	local pods objects written unchanged
	pods=$(sed -n 's/^audit: v1 Pod: \([0-9]*\) objects in .*/\1/p' "$err")
	objects=$(sed -n 's/^audit: .*: \([0-9]*\) objects in [0-9]* pages$/\1/p' "$err" | awk '{s += $1} END {print s + 0}')
	written=$(sed -n 's/^audit: reports: \([0-9]*\) written, .*/\1/p' "$err")
	unchanged=$(sed -n 's/^audit: reports: [0-9]* written, \([0-9]*\) unchanged.*/\1/p' "$err")
	[ "$rc" = 2 ] || [ "$format" != json ] || python3 - "$out" "$size" "$(privileged_count "$size")" "${pods:-0}" <<'EOF' >&2
import json, sys
report, size, privileged, pods = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
denied = {(f["object"]["namespace"], f["object"]["name"]) for f in report["findings"]
          if f["object"].get("kind") == "Pod" and f.get("rule") == "deny"
          and f["object"].get("namespace", "").startswith("audit-bench-")}
problems = []
if pods != size:
    problems.append(f"{pods} Pods listed, {size} stored")
if len(denied) != privileged:
    problems.append(f"{len(denied)} Pods denied, {privileged} privileged")
if problems:
    sys.exit("the audit's counts are wrong: " + "; ".join(problems))
EOF
	rm -f "$out"
	local cpu
	cpu=$(python3 -c "print(f'{$user + $sys:.1f}')")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$run" "$page" "$pods" "$objects" "$wall" \
		"$cpu" "$maxrss" "${written:--}" "${unchanged:--}" "$rc" "${errors:--}" "$load" >>"$WORK/cli.tsv"
	echo "  audit $run page $page: $objects objects ($pods Pods) in $wall s, CPU $cpu s, peak RSS $((maxrss / 1024)) MiB; reports written ${written:--} unchanged ${unchanged:--} (load $load)" >&2
}

# Starts `regate serve --cluster-state kube` with extra flags "$@" (pinned to SERVER_CPU) and waits for
# /readyz; sets SERVER_PID, PORT, MPORT.
start_server() {
	PORT=$(free_port)
	MPORT=$(free_port)
	: >"$WORK/server.log"
	KUBECONFIG="$KC" taskset -c "$SERVER_CPU" "${SERVE_BINARY:-$REGATE}" serve --addr "127.0.0.1:$PORT" \
		--metrics-addr "127.0.0.1:$MPORT" --tls-dir "$TLS" --cluster-state kube --cluster-settle 0 \
		--decision-log off --log-level warn,regate=info --log-format json "$@" >>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 1200); do
		curl -sf -o /dev/null "http://127.0.0.1:$MPORT/readyz" && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$WORK/server.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "regate serve was not ready within 120 s" >&2
	tail -n 30 "$WORK/server.log" >&2
	exit 1
}
stop_server() {
	cat "$WORK/server.log" >>"$WORK/servers.log"
	stop_pid "$SERVER_PID" 10
	SERVER_PID=""
}
metric() { # NAME (with labels): its value on the running server, 0 when absent
	curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}'
}
successes() { metric 'regate_audit_runs_total{result="success"}'; }
# Waits (up to AUDIT_TIMEOUT s) until the server has finished $1 complete audits; fails on a failed one.
wait_audits() {
	local deadline=$((SECONDS + AUDIT_TIMEOUT))
	while [ "$(successes)" -lt "$1" ]; do
		if [ "$(metric 'regate_audit_runs_total{result="failure"}')" -gt 0 ]; then
			echo "the in-server audit failed:" >&2
			grep -i audit "$WORK/server.log" | tail -n 20 >&2
			exit 1
		fi
		[ "$SECONDS" -lt "$deadline" ] || { echo "no complete audit within $AUDIT_TIMEOUT s" >&2; exit 1; }
		kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$WORK/server.log" >&2; exit 1; }
		sleep 0.5
	done
}
audit_thread_alive() { grep -qx regate-audit /proc/"$SERVER_PID"/task/*/comm 2>/dev/null; }
# The time slice (µs) of the server's audit thread, "-" when none runs.
audit_thread_slice() {
	local task comm
	for task in /proc/"$SERVER_PID"/task/*; do
		comm=""
		read -r comm <"$task/comm" 2>/dev/null || true
		if [ "$comm" = regate-audit ]; then
			awk '$1 == "se.slice" {printf "%d\n", $3 / 1000; found = 1} END {if (!found) print "-"}' "$task/sched" 2>/dev/null && return
		fi
	done
	echo -
}

# One row of serve.tsv for the running server: $1 size, $2 reports, $3 stage.
serve_row() {
	local written unchanged
	written=$(sed -n '/"audit finished"/s/.*"reports_written":\([0-9]*\).*/\1/p' "$WORK/server.log" | tail -n1)
	unchanged=$(sed -n '/"audit finished"/s/.*"reports_unchanged":\([0-9]*\).*/\1/p' "$WORK/server.log" | tail -n1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(status_kib "$SERVER_PID" VmHWM)" \
		"$(status_kib "$SERVER_PID" VmRSS)" "$(metric regate_audit_duration_seconds)" \
		"$(metric regate_audit_objects)" "${written:--}" "${unchanged:--}" "$(load1)" >>"$WORK/serve.tsv"
	tail -n1 "$WORK/serve.tsv" | awk -F'\t' '{printf "  serve (reports %s) %s: VmHWM %d MiB VmRSS %d MiB, last audit %s s, %s objects, reports written %s unchanged %s (load %s)\n", $2, $3, $4 / 1024, $5 / 1024, $6, $7, $8, $9, $10}' >&2
}
# The in-server audit's memory: a server auditing every second (--audit-api-qps 0), read once ready and
# after its first and second complete audit. $1 size, $2 --audit-reports, then extra flags.
serve_memory() {
	local size=$1 reports=$2
	shift 2
	start_server --audit-interval 1s --audit-api-qps 0 --audit-page-size 500 --audit-reports "$reports" "$@" \
		--audit-lease-namespace default --audit-lease-name "audit-bench-$size-rss-$reports"
	serve_row "$size" "$reports" ready
	wait_audits 1
	serve_row "$size" "$reports" first-audit
	wait_audits 2
	serve_row "$size" "$reports" second-audit
	stop_server
}

for size in $SIZES; do
	echo "== $size Pods" >&2
	# --- seed ---------------------------------------------------------------------------------------
	load=$(load1)
	started=$(now)
	seeded=$(python3 scripts/lib/audit/seed.py "$KC" 0 "$size" --namespaces "$NAMESPACES" \
		--privileged-every "$PRIVILEGED_EVERY" --threads "$THREADS")
	read -r _ added _ existing _ seconds <<<"$seeded"
	printf '%s\t%s\t%s\t%s\n' "$size" "$added" "$seconds" "$load" >>"$WORK/seed.tsv"
	echo "  seeded: $added Pods added ($existing there already) in $seconds s (load $load); total $(elapsed "$started" "$(now)") s" >&2

	# --- regate audit ---------------------------------------------------------------------------------
	for page in $PAGE_SIZES; do
		for format in $FORMATS; do
			cli_audit "$size" "$format" "$page" "$format"
		done
	done
	# --- regate serve --audit-interval: memory without reports ---------------------------------------------
	serve_memory "$size" off

	# --- admission latency without and with an audit running --------------------------------------------
	cp_place "$LOAD_CPU" 10 "$CP_SLICE_US"
	for round in $(seq 1 "$LATENCY_ROUNDS"); do
		for SERVE_BINARY in $BASELINE "$REGATE"; do
			binary=this
			[ "$SERVE_BINARY" = "$REGATE" ] || binary=$(basename "$SERVE_BINARY")
			for mode in $LATENCY_MODES; do
				if [ "$mode" != none ]; then
					start_server --audit-interval 1s --audit-api-qps 0 --audit-page-size 500 --audit-reports off \
						--audit-lease-namespace default --audit-lease-name "audit-bench-$size-$round"
					deadline=$((SECONDS + 120))
					until audit_thread_alive; do
						[ "$SECONDS" -lt "$deadline" ] || { echo "no audit started within 120 s" >&2; exit 1; }
						sleep 0.1
					done
					if [ "$mode" = running-idle ]; then
						# Each audit thread, as each audit starts one, moved from nice 19 to SCHED_IDLE. The loop
						# runs on LOAD_CPU and forks only for chrt, once per new thread.
						(
							taskset -p -c "$LOAD_CPU" "$BASHPID" >/dev/null
							declare -A idle=()
							while :; do
								for task in /proc/"$SERVER_PID"/task/*; do
									tid=${task##*/}
									[ -z "${idle[$tid]:-}" ] || continue
									comm=""
									read -r comm <"$task/comm" 2>/dev/null || true
									if [ "$comm" = regate-audit ]; then
										chrt --idle -p 0 "$tid" >/dev/null 2>&1 && idle[$tid]=1
									fi
								done
								sleep 0.05
							done
						) &
						IDLER_PID=$!
					fi
				else
					start_server
				fi
				url="https://127.0.0.1:$PORT/validate?timeout=10s"
				oha_warm "$url" "$CACERT" "$LOADGEN_POD_REVIEW"
				load=$(load1)
				done_before=$(successes)
				(
					n=0 alive=0
					while :; do
						n=$((n + 1))
						audit_thread_alive && alive=$((alive + 1))
						echo "$alive $n" >"$WORK/samples"
						sleep 0.25
					done
				) &
				SAMPLER_PID=$!
				slice=-
				[ "$mode" = none ] || slice=$(audit_thread_slice)
				before=$(proc_ticks "$SERVER_PID")
				result=$(oha_run "$url" "$CACERT" "$LOADGEN_POD_REVIEW" "$LOAD_RATE")
				after=$(proc_ticks "$SERVER_PID")
				stop_pid "$SAMPLER_PID" 2
				SAMPLER_PID=""
				read -r alive samples <"$WORK/samples"
				done_after=$(successes)
				hwm=$(status_kib "$SERVER_PID" VmHWM)
				if [ -n "$IDLER_PID" ]; then
					stop_pid "$IDLER_PID" 2
					IDLER_PID=""
				fi
				stop_server
				read -r rps p50 p99 p99all ok errors <<<"$result"
				cpu=$(cpu_per_review "$before" "$after" "$ok")
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$round" "$binary" \
					"$mode" "$slice" "$rps" \
					"$p50" "$p99" "$p99all" "$ok" "$errors" "$cpu" "$alive" "$samples" "$((done_after - done_before))" \
					"$hwm" "$load" >>"$WORK/latency.tsv"
				echo "  latency round $round $binary audit $mode (slice $slice µs): $rps reviews/s p50 $p50 ms p99 $p99 ms (whole run $p99all) cpu $cpu µs/review (ok $ok, errors $errors); audit thread alive in $alive/$samples samples, $((done_after - done_before)) audits finished; VmHWM $((hwm / 1024)) MiB (load $load)" >&2
			done
		done
	done
	SERVE_BINARY=""
	cp_place "$ALL_CPUS" 0 0

	# --- reports: regate audit --write-reports twice, then the in-server audit writing them -------------------
	if [[ " $REPORT_SIZES " == *" $size "* ]]; then
		[ "$REPORT_CRDS_INSTALLED" = 1 ] || install_report_crds
		for run in $(seq 1 "$REPORT_RUNS"); do
			cli_audit "$size" "reports-$run" 500 json --write-reports --report-results "$REPORT_RESULTS"
		done
	fi
	if [[ " $SERVE_REPORT_SIZES " == *" $size "* ]]; then
		[ "$REPORT_CRDS_INSTALLED" = 1 ] || install_report_crds
		serve_memory "$size" openreports --audit-report-results "$REPORT_RESULTS"
	fi
	# The next size audits Pods, not the reports of this one.
	if [ "$REPORT_CRDS_INSTALLED" = 1 ] && [ "$size" != "${SIZES##* }" ]; then
		delete_report_crds
	fi
done

# --- the tables -------------------------------------------------------------------------------------------
echo
echo "regate $("$REGATE" --version 2>/dev/null | head -n1) ($REGATE); control plane: $TESTENV (kube-apiserver $("$TESTENV" kubectl version --client -o json 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'))"
echo "$NAMESPACES namespaces (half with a tenant), one Pod in $PRIVILEGED_EVERY privileged; CLI audits unpinned with --api-qps 0;"
echo "serve pinned to CPU $SERVER_CPU, oha to CPU $LOAD_CPU at $LOAD_RATE reviews/s for $DURATION over $CONNECTIONS connections"
echo
python3 - "$WORK" <<'EOF'
import csv, os, statistics, sys
work = sys.argv[1]
read = lambda name: list(csv.DictReader(open(os.path.join(work, name)), delimiter="\t"))
seed, cli, serve, latency = read("seed.tsv"), read("cli.tsv"), read("serve.tsv"), read("latency.tsv")
mib = lambda kib: f"{int(kib) / 1024:.0f}"
print("seeding")
for r in seed:
    rate = int(r["added"]) / float(r["seconds"]) if float(r["seconds"]) > 0 else 0
    print(f"  to {int(r['size']):,} Pods: {int(r['added']):,} added in {r['seconds']} s ({rate:.0f} Pods/s), load {r['load1']}")
print()
print(f"{'Pods':>8} {'run':15} {'page':>5} {'objects':>8} {'wall s':>8} {'objects/s':>10} {'CPU s':>7} {'peak RSS MiB':>13} {'written':>8} {'unchanged':>9} {'exit':>4}  load")
for r in cli:
    rate = int(r["objects"]) / float(r["wall_s"]) if float(r["wall_s"]) > 0 else 0
    print(f"{int(r['size']):>8,} {r['run']:15} {r['page']:>5} {int(r['objects']):>8,} {r['wall_s']:>8} {rate:>10,.0f} "
          f"{r['cpu_s']:>7} {mib(r['maxrss_kib']):>13} {r['written']:>8} {r['unchanged']:>9} {r['exit']:>4}  {r['load1']}")
    if r["errors"] != "-":
        print(f"{'':>8} errors: {r['errors']}")
print()
print(f"{'Pods':>8} {'reports':12} {'stage':14} {'VmHWM MiB':>10} {'VmRSS MiB':>10} {'audit s':>8} {'objects':>8} {'written':>8} {'unchanged':>9}  load")
for r in serve:
    print(f"{int(r['size']):>8,} {r['reports']:12} {r['stage']:14} {mib(r['hwm_kib']):>10} {mib(r['rss_kib']):>10} "
          f"{float(r['duration_s']):>8.1f} {int(float(r['objects'])):>8,} {r['written']:>8} {r['unchanged']:>9}  {r['load1']}")
print()
print(f"{'Pods':>8} {'round':>5} {'binary':12} {'audit':12} {'slice µs':>8} {'reviews/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99all':>7} {'CPU µs':>7} {'errors':>6} {'audit alive':>12} {'audits':>6} {'VmHWM':>6}  load")
for r in latency:
    print(f"{int(r['size']):>8,} {r['round']:>5} {r['binary']:12} {r['audit']:12} {r['slice_us']:>8} {r['rps']:>9} {r['p50']:>7} {r['p99']:>7} {r['p99all']:>7} "
          f"{r['cpu_us']:>7} {r['errors']:>6} {r['audit_samples'] + '/' + r['samples']:>12} {r['audits_done']:>6} {mib(r['hwm_kib']):>6}  {r['load1']}")
for size, binary in dict.fromkeys((r["size"], r["binary"]) for r in latency):
    for mode in ("none", "running", "running-idle"):
        rows = [r for r in latency if r["size"] == size and r["binary"] == binary and r["audit"] == mode]
        p99 = [float(r["p99"]) for r in rows if r["p99"] not in ("-", "")]
        p50 = [float(r["p50"]) for r in rows if r["p50"] not in ("-", "")]
        if p99:
            print(f"  {int(size):,} Pods, {binary}, audit {mode}: p50 median {statistics.median(p50):.2f} ms "
                  f"[{min(p50):.2f}-{max(p50):.2f}], p99 median {statistics.median(p99):.2f} ms [{min(p99):.2f}-{max(p99):.2f}]")
EOF
