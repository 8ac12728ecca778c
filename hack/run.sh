#!/usr/bin/env bash
# Runs statekeeper as a local process against the local cluster, with the
# webhook configurations rendered from the chart and pointed at it, and the
# chart's admission policy where the API server serves it.
#
#   hack/run.sh start   start statekeeper (restarting a running one) and register the webhooks
#   hack/run.sh stop    remove the webhook configurations and the policy, and stop statekeeper
#
# The configurations are removed before the process stops: the workload
# webhooks fail closed, so a registered but absent server would refuse every
# managed Deployment and StatefulSet in the cluster.
set -euo pipefail

: "${LOCAL:?}" "${KUBECONFIG_LOCAL:?}" "${KUBECTL:?}" "${HELM:?}" "${STATEKEEPER:?}"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WEBHOOK_HOST=${WEBHOOK_HOST:-127.0.0.1}
WEBHOOK_PORT=${WEBHOOK_PORT:-9443}
HEALTH_ADDR=${HEALTH_ADDR:-127.0.0.1:8081}
METRICS_ADDR=${METRICS_ADDR:-127.0.0.1:8080}
NAMESPACE=${NAMESPACE:-statekeeper}
CERT_DIR=$LOCAL/certs
PID_FILE=$LOCAL/statekeeper.pid
LOG_FILE=$LOCAL/statekeeper.log
WEBHOOKS=$LOCAL/webhooks.yaml
POLICIES=$LOCAL/admission-policies.yaml

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_LOCAL" "$@"; }
log() { printf '%s\n' "$*" >&2; }

running_pid() {
	local pid
	[[ -f $PID_FILE ]] || return 1
	pid=$(<"$PID_FILE")
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

unregister_webhooks() {
	local f
	for f in "$WEBHOOKS" "$POLICIES"; do
		if [[ -s $f && -f $KUBECONFIG_LOCAL ]]; then
			kubectl delete -f "$f" --ignore-not-found --request-timeout=10s >/dev/null 2>&1 || true
		fi
	done
}

# policy_api_versions is the --api-versions flag that makes the chart render
# its ValidatingAdmissionPolicy, when the API server serves the kind (helm
# template alone does not ask the cluster).
policy_api_versions() {
	if kubectl api-resources --api-group=admissionregistration.k8s.io -o name | grep -qx 'validatingadmissionpolicies.admissionregistration.k8s.io'; then
		echo "--api-versions=admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
	fi
}

stop_process() {
	local pid
	pid=$(running_pid) || { rm -f "$PID_FILE"; return 0; }
	kill "$pid"
	for _ in $(seq 1 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "statekeeper (pid $pid) did not stop in 15s; killing it"
		kill -KILL "$pid"
	fi
	rm -f "$PID_FILE"
}

stop() {
	unregister_webhooks
	stop_process
	log "statekeeper stopped; webhook configurations and admission policy removed"
}

wait_ready() {
	local pid=$1
	for _ in $(seq 1 60); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "statekeeper exited; the end of $LOG_FILE:"
			tail -n 20 "$LOG_FILE" >&2
			return 1
		fi
		if curl -fsS "http://$HEALTH_ADDR/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	log "statekeeper was not ready in 60s; see $LOG_FILE"
	return 1
}

# The API server loads webhook configurations through a watch, a moment after
# they are stored. A server-side dry run of a managed StatefulSet without a
# serviceName (safe: the webhooks have no side effects) shows when the mutation
# is live, so the lines printed below work at once.
wait_registered() {
	local probe
	probe=$(
		cat <<'EOF'
{"apiVersion": "apps/v1", "kind": "StatefulSet",
 "metadata": {"name": "statekeeper-probe", "namespace": "default",
              "labels": {"statekeeper.io/deploy-type": "stateful-multi"}},
 "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "statekeeper-probe"}},
          "template": {"metadata": {"labels": {"app": "statekeeper-probe"}},
                       "spec": {"containers": [{"name": "probe", "image": "probe"}]}}}}
EOF
	)
	for _ in $(seq 1 30); do
		if [[ -n $(kubectl create --dry-run=server -o 'jsonpath={.spec.serviceName}' -f - <<<"$probe" 2>/dev/null) ]]; then
			return 0
		fi
		sleep 1
	done
	log "the API server did not call statekeeper within 30s; see $LOG_FILE"
	return 1
}

start() {
	# A restart picks up a rebuilt binary; the old registration is replaced below.
	unregister_webhooks
	stop_process
	mkdir -p "$LOCAL"

	# The CA survives restarts (dev-ca.sh keeps it); the serving pair is re-issued.
	"$REPO/certs/dev-ca.sh" "$CERT_DIR" "$WEBHOOK_HOST" >/dev/null

	# The chart excludes its release namespace from review; name one that is
	# not the examples' "default". It holds the leader-election Lease and is
	# where the policy's start-up probe runs.
	kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE" >/dev/null
	local api_versions
	api_versions=$(policy_api_versions)
	"$HELM" template statekeeper "$REPO/charts/statekeeper" \
		--namespace "$NAMESPACE" ${api_versions:+"$api_versions"} \
		--set tls.mode=secret \
		--set "webhook.url=https://$WEBHOOK_HOST:$WEBHOOK_PORT" \
		--set "webhook.caBundle=$(base64 -w0 "$CERT_DIR/ca.crt")" \
		--show-only templates/mutatingwebhookconfiguration.yaml \
		--show-only templates/validatingwebhookconfiguration.yaml >"$WEBHOOKS"

	# The PolicyReport CRD the background audit writes to, as the chart
	# installs it; `make stop` keeps it, as `helm uninstall` does.
	"$HELM" template statekeeper "$REPO/charts/statekeeper" --namespace "$NAMESPACE" \
		--show-only templates/policyreport-crd.yaml | kubectl apply --server-side -f - >/dev/null
	kubectl wait --for condition=established --timeout 30s crd/policyreports.wgpolicyk8s.io >/dev/null

	# The admission policies and their bindings (the rules and mutations that
	# need no lookup, in-process): they need no server, so they go first, and
	# the server's start-up probe finds them.
	: >"$POLICIES"
	if [[ -n $api_versions ]]; then
		"$HELM" template statekeeper "$REPO/charts/statekeeper" --namespace "$NAMESPACE" "$api_versions" \
			--show-only templates/validatingadmissionpolicy.yaml >"$POLICIES"
		# The mutating one too, where the API server serves it (1.36+).
		if kubectl api-resources --api-group=admissionregistration.k8s.io -o name | grep -qx 'mutatingadmissionpolicies.admissionregistration.k8s.io'; then
			"$HELM" template statekeeper "$REPO/charts/statekeeper" --namespace "$NAMESPACE" \
				--api-versions=admissionregistration.k8s.io/v1/MutatingAdmissionPolicy \
				--show-only templates/mutatingadmissionpolicy.yaml >>"$POLICIES"
		fi
		kubectl apply -f "$POLICIES" >/dev/null
	fi

	"$STATEKEEPER" serve \
		--kubeconfig "$KUBECONFIG_LOCAL" \
		--cert-dir "$CERT_DIR" \
		--webhook-host "$WEBHOOK_HOST" \
		--webhook-port "$WEBHOOK_PORT" \
		--health-probe-bind-address "$HEALTH_ADDR" \
		--metrics-bind-address "$METRICS_ADDR" \
		--namespace "$NAMESPACE" \
		--verify-admission-policies="$([[ -n $api_versions ]] && echo true || echo false)" \
		--log-format console >"$LOG_FILE" 2>&1 &
	local pid=$!
	echo "$pid" >"$PID_FILE"
	if ! wait_ready "$pid"; then
		stop_process
		return 1
	fi
	kubectl apply -f "$WEBHOOKS" >/dev/null
	if ! wait_registered; then
		stop
		return 1
	fi

	local k="kubectl --kubeconfig .local/kubeconfig"
	[[ $(type -P kubectl) == "$KUBECTL" ]] || k="$KUBECTL --kubeconfig .local/kubeconfig"
	cat <<EOF

statekeeper is running (pid $pid, log .local/statekeeper.log) and registered
with the local cluster. Try:

  # a mutation: serviceName redis-headless and a "data" claim template injected
  $k apply -f examples/redis.yaml
  $k get statefulset redis -o yaml

  # the stable identity stamped on each pod (statekeeper.io/* annotations)
  $k get pod redis-0 -o yaml

  # a denial: mysql is stateful-single [single-instance]
  $k apply -f examples/mysql.yaml
  $k scale statefulset mysql --replicas=3

Stop it with: make stop
EOF
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
	log "usage: $0 start|stop"
	exit 2
	;;
esac
