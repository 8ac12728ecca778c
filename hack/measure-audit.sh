#!/usr/bin/env bash
# The audit under load: COUNT broken Deployments (labelled stateful-multi, a
# kind mismatch, with no replicas so that no pod runs) in one namespace,
# audited by `statekeeper serve` (alone, so without leader election, whose
# lease renewals a loaded machine can miss; no webhook registered)
# writing PolicyReports. Prints the audit's pass times, the reports' number
# and sizes, and the process's memory. Not asserted: a measurement.
#
#   make measure-audit [COUNT=5000]
#
# Two passes are timed: the start pass (a fresh process over the stored
# workloads: cache sync, one audit, the reports written) and a periodic pass
# over the unchanged namespace (one audit, nothing written). Memory is read
# from the process's /metrics after each, with the empty namespace first as
# the baseline.
set -euo pipefail

: "${LOCAL:?}" "${KUBECONFIG_LOCAL:?}" "${KUBECTL:?}" "${STATEKEEPER:?}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=${COUNT:-5000}
NS=statekeeper-measure-audit
SYSTEM_NS=statekeeper-measure
DIR=$LOCAL/measure-audit
LOG=$DIR/statekeeper.log
METRICS=127.0.0.1:18090
HEALTH=127.0.0.1:18091
INTERVAL=60s
mkdir -p "$DIR"

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_LOCAL" "$@"; }
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }

PID=
stop_server() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID"
		wait "$PID" 2>/dev/null || true
	fi
	PID=
}
cleanup() {
	stop_server
	kubectl delete namespace "$NS" "$SYSTEM_NS" --ignore-not-found --wait=false >/dev/null
}
trap cleanup EXIT

start_server() {
	"$STATEKEEPER" serve --kubeconfig "$KUBECONFIG_LOCAL" --cert-dir "$DIR/certs" \
		--webhook-host 127.0.0.1 --webhook-port 19444 \
		--metrics-bind-address "$METRICS" --health-probe-bind-address "$HEALTH" \
		--namespace "$SYSTEM_NS" --leader-elect=false --audit-interval "$INTERVAL" >>"$LOG" 2>&1 &
	PID=$!
	for _ in $(seq 600); do
		curl -fsS "http://$HEALTH/readyz" >/dev/null 2>&1 && return
		kill -0 "$PID" || { log "statekeeper exited; see $LOG"; exit 1; }
		sleep 0.1
	done
	log "statekeeper never became ready; see $LOG"
	exit 1
}

metric() { curl -fsS "http://$METRICS/metrics" | awk -v m="$1" '$1 == m { printf "%.1f", $2 / 1048576 }'; }
memory() { printf 'RSS %s MiB, heap in use %s MiB, heap allocated %s MiB' \
	"$(metric process_resident_memory_bytes)" "$(metric go_memstats_heap_inuse_bytes)" "$(metric go_memstats_heap_alloc_bytes)"; }

# The Nth "audited namespace" line of this namespace with all COUNT objects
# and findings in the log, printed as "<seconds> <created> <updated> <deleted>".
pass_line() {
	grep '"audited namespace"' "$LOG" | grep "\"namespace\":\"$NS\"" |
		grep "\"objects\":$COUNT," | grep "\"findings\":$COUNT," | sed -n "${1}p" |
		sed -E 's/.*"reportsCreated":([0-9]+),"reportsUpdated":([0-9]+),"reportsDeleted":([0-9]+),"seconds":([0-9.e-]+).*/\4 \1 \2 \3/'
}
wait_pass() {
	local n=$1 line
	for _ in $(seq 3000); do
		line=$(pass_line "$n" || true)
		[[ -n $line ]] && { echo "$line"; return; }
		kill -0 "$PID" || { log "statekeeper exited; see $LOG"; exit 1; }
		sleep 0.2
	done
	log "no complete audit pass in the log; see $LOG"
	exit 1
}

kubectl delete namespace "$NS" "$SYSTEM_NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$SYSTEM_NS" >/dev/null
kubectl apply --server-side -f "$REPO/charts/statekeeper/files/wgpolicyk8s.io_policyreports.yaml" >/dev/null
kubectl wait --for condition=established crd/policyreports.wgpolicyk8s.io >/dev/null
"$REPO/certs/dev-ca.sh" "$DIR/certs" 127.0.0.1 >/dev/null
: >"$LOG"

log "baseline: statekeeper over an empty namespace"
start_server
sleep 5
baseline=$(memory)
stop_server

log "creating $COUNT Deployments in $NS"
created=$(now)
for part in $(seq 0 15); do
	for ((i = part; i < COUNT; i += 16)); do
		printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-%05d, labels: {app: web-%05d, statekeeper.io/deploy-type: stateful-multi}}\n' "$i" "$i"
		printf 'spec: {replicas: 0, selector: {matchLabels: {app: web-%05d}}, template: {metadata: {labels: {app: web-%05d}}, spec: {containers: [{name: web, image: registry.k8s.io/pause:3.10}]}}}\n' "$i" "$i"
	done | kubectl create -n "$NS" -f - >/dev/null &
done
wait
log "created in $(awk -v a="$created" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"

log "start pass: a fresh statekeeper over $COUNT stored workloads"
: >"$LOG"
started=$(now)
start_server
read -r start_seconds start_created start_updated start_deleted < <(wait_pass 1)
start_total=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
after_start=$(memory)
log "start pass: ${start_total} s from process start, audit ${start_seconds} s, reports created ${start_created}; ${after_start}"

log "periodic pass ($INTERVAL later) over the unchanged namespace"
read -r steady_seconds steady_created steady_updated steady_deleted < <(wait_pass 2)
after_steady=$(memory)

reports=$(kubectl get policyreports -n "$NS" -o name)
sizes=()
results=()
for r in $reports; do
	sizes+=("$(kubectl get -n "$NS" "$r" -o json | wc -c)")
	results+=("$(kubectl get -n "$NS" "$r" -o jsonpath='{.summary.fail}')")
done

cat <<REPORT

## Audit of $COUNT workloads in one namespace

| measurement | value |
|---|---|
| start pass: process start to reports written | ${start_total} s |
| start pass: the audit of the namespace and its report writes | ${start_seconds} s (${start_created} reports created, ${start_updated} updated, ${start_deleted} deleted) |
| periodic pass over the unchanged namespace | ${steady_seconds} s (${steady_created} created, ${steady_updated} updated, ${steady_deleted} deleted) |
| reports | $(echo "$reports" | wc -w) |
| results per report | ${results[*]} |
| bytes per report (JSON as served) | ${sizes[*]} |
| memory, empty namespace | ${baseline} |
| memory after the start pass | ${after_start} |
| memory after the periodic pass | ${after_steady} |
REPORT
