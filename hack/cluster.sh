#!/usr/bin/env bash
# Local cluster for development and e2e, with no containers: etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler run as local
# processes under kwokctl's binary runtime, and KWOK plays one node and the
# pods on it. Called by the Makefile, which builds the binaries and passes
# their locations in the environment.
#
#   hack/cluster.sh up     create or restart the cluster (a no-op when it runs)
#   hack/cluster.sh down   delete it
#   hack/cluster.sh restart COMPONENT
#                          stop one component (etcd, kube-apiserver, ...) with
#                          SIGTERM and start it again, for the fault suite
set -euo pipefail

: "${LOCAL:?}" "${KUBECONFIG_LOCAL:?}" "${KUBE_VERSION:?}" "${KUBE_DIR:?}" "${KWOK_DIR:?}" "${ETCD:?}" "${KUBECTL:?}"

CLUSTER_NAME=${CLUSTER_NAME:-statekeeper}
PV_POOL_SIZE=${PV_POOL_SIZE:-20}

# kwokctl keeps each cluster's state (pki, etcd data, logs, pids) in its
# workdir; this checkout's cluster lives beside its kubeconfig.
export KWOK_WORKDIR=${KWOK_WORKDIR:-$LOCAL/kwok}
export KWOK_KUBE_VERSION=$KUBE_VERSION
export KWOK_KUBECTL_BINARY=$KUBECTL
# kwokctl picks etcd flags by version; tell it the one we run (Debian's).
KWOK_ETCD_VERSION=$("$ETCD" --version | awk '/^etcd Version:/ {print $3}')
export KWOK_ETCD_VERSION
# With the WatchList gate on (the default since 1.34) the API server turns
# every watch from resourceVersion "" or "0" into a streaming list, which
# needs etcd's watch-progress requests; Debian's etcd 3.4 lacks them, so such
# watches fail at once and KWOK, which watches that way, would see pods only
# on its backed-off relists. Off, those watches work as they did before 1.34.
KUBE_FEATURE_GATES=${KUBE_FEATURE_GATES:-WatchList=false}
# kube-controller-manager's client is limited to 20 requests/s by default:
# 10,000 workloads (make measure-cache-scale) would then take half an hour
# of status writes alone. 200/s keeps it bounded on two shared cores.
KCM_API_QPS=${KCM_API_QPS:-200}
# The API server calls a webhook's Service through the Service's endpoints
# (as it does for aggregated APIs) rather than its cluster IP: no kube-proxy
# runs here, and the fault suite (test/faults) routes to statekeeper
# replicas in network namespaces that way.
APISERVER_EXTRA_ARGS=(kube-apiserver=enable-aggregator-routing=true)
# Admission plugins beyond the defaults, as hardened clusters (OpenShift among
# them) run: OwnerReferencesPermissionEnforcement refuses a blockOwnerDeletion
# that its writer may not set, which the e2e suite's ServiceAccount-bound
# statekeeper would otherwise never meet.
APISERVER_EXTRA_ARGS+=("kube-apiserver=enable-admission-plugins=${KUBE_ADMISSION_PLUGINS:-OwnerReferencesPermissionEnforcement}")
KCM_EXTRA_ARGS=("kube-controller-manager=kube-api-qps=$KCM_API_QPS" "kube-controller-manager=kube-api-burst=$((2 * KCM_API_QPS))")

# extra_args prints kwokctl's --extra-args for COMPONENT=FLAG=VALUE words,
# the first word of each component before any second one: kwokctl v0.8.0
# remembers a component by the position of its first --extra-args among all
# of them, not among the components, and indexes past its list (a panic in
# mutationComponentPatches) when a component's first flag comes after another
# component's second.
extra_args() {
	local word component seen=" " firsts=() rest=()
	for word in "$@"; do
		component=${word%%=*}
		if [[ $seen == *" $component "* ]]; then
			rest+=(--extra-args "$word")
		else
			seen+="$component "
			firsts+=(--extra-args "$word")
		fi
	done
	printf '%s\n' "${firsts[@]}" "${rest[@]}"
}

# The cluster's processes outlive this script and inherit what kwokctl has
# open: under `flock LOCK make faults` they would hold LOCK for as long as
# the cluster runs. kwokctl gets only stdin, stdout and stderr.
kwokctl() (
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		if ((fd > 2)); then exec {fd}>&-; fi
	done
	exec "$KWOK_DIR/kwokctl" "$@"
)
kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_LOCAL" "$@"; }
log() { printf '%s\n' "$*" >&2; }

cluster_exists() { kwokctl get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; }
api_ready() { [[ -f $KUBECONFIG_LOCAL ]] && kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }

write_kubeconfig() {
	mkdir -p "$(dirname "$KUBECONFIG_LOCAL")"
	kwokctl get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG_LOCAL.tmp"
	mv "$KUBECONFIG_LOCAL.tmp" "$KUBECONFIG_LOCAL"
}

create_cluster() {
	local EXTRA_ARGS
	mapfile -t EXTRA_ARGS < <(extra_args "${KCM_EXTRA_ARGS[@]}" "${APISERVER_EXTRA_ARGS[@]}")
	# --kubeconfig "" keeps kwokctl away from ~/.kube/config.
	kwokctl create cluster \
		--name "$CLUSTER_NAME" \
		--runtime binary \
		--kube-apiserver-binary "$KUBE_DIR/kube-apiserver" \
		--kube-controller-manager-binary "$KUBE_DIR/kube-controller-manager" \
		--kube-scheduler-binary "$KUBE_DIR/kube-scheduler" \
		--kwok-controller-binary "$KWOK_DIR/kwok" \
		--etcd-binary "$ETCD" \
		--kube-feature-gates "$KUBE_FEATURE_GATES" \
		"${EXTRA_ARGS[@]}" \
		--kubeconfig "" \
		--wait 3m
}

wait_until() {
	local what=$1 timeout=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "timed out after ${timeout}s waiting for $what"
			return 1
		fi
		sleep 1
	done
}

# One fake node that takes every pod, marked for KWOK to manage. Its status
# lists the resources a real kubelet reports (capacity, and allocatable less
# the kubelet's default eviction thresholds: memory.available 100Mi,
# nodefs.available 10%), so that pods requesting ephemeral-storage or
# hugepages are scheduled as on a real node; the amounts are large so the
# examples and e2e never wait on scheduling. KWOK's node stages keep a
# status's capacity and allocatable and only rewrite its conditions.
NODE_NAME=kwok-node-0
NODE_STATUS='status:
  capacity:
    cpu: "32"
    memory: 256Gi
    ephemeral-storage: 500Gi
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    pods: "110"
  allocatable:
    cpu: "32"
    memory: 262044Mi
    ephemeral-storage: 450Gi
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    pods: "110"'

# apply_node creates the node with its status, so that KWOK never sees it
# without one, and writes the status again through the status subresource:
# an apply ignores the status of a node that exists, and a cluster made
# before a change here gets the new resources too.
apply_node() {
	kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
$NODE_STATUS
EOF
	kubectl patch node "$NODE_NAME" --subresource=status --type=merge -p "$NODE_STATUS" >/dev/null
}

# No provisioner runs here, so claims bind to a pre-made pool of volumes. The
# class binds immediately (not WaitForFirstConsumer) because no kubelet
# would report the pod's node to a provisioner anyway. It allows volume
# expansion so that statekeeper's claim growth can be seen: a claim's
# requested size changes, but no resizer runs here, so its capacity never
# does (the pool's volumes are 10Gi anyway).
apply_storage_class() {
	kubectl apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF
}

# Keeps PV_POOL_SIZE volumes in the pool: released ones (their claim was
# deleted; nothing real is stored on a KWOK node) are deleted and made anew,
# so repeated e2e runs never drain the pool.
refill_volume_pool() {
	local pool released
	pool=$(kubectl get pv -l statekeeper.io/local-pool=true \
		-o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.phase}{"\n"}{end}')
	released=$(awk '$2 == "Released" || $2 == "Failed" {print $1}' <<<"$pool")
	if [[ -z $released ]] && (($(grep -c . <<<"$pool") == PV_POOL_SIZE)); then
		return
	fi
	if [[ -n $released ]]; then
		# shellcheck disable=SC2086 # one name per word
		kubectl delete pv $released --wait=true >/dev/null
	fi
	local i manifest=""
	for ((i = 1; i <= PV_POOL_SIZE; i++)); do
		manifest+=$(printf -- '---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-%03d
  labels:
    statekeeper.io/local-pool: "true"
spec:
  capacity:
    storage: 10Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath:
    path: /tmp/statekeeper-local-pv/%03d
' "$i" "$i")$'\n'
	done
	kubectl apply -f - >/dev/null <<<"$manifest"
}

setup_cluster() {
	wait_until "the API server" 120 api_ready
	apply_node
	apply_storage_class
	refill_volume_pool
	wait_until "node $NODE_NAME to be Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
	# Pods are refused until the controller-manager made the namespace's
	# service account.
	wait_until "the default service account" 120 kubectl get serviceaccount default -n default
}

# A cluster made before the API server routed to endpoints is made anew.
routes_to_endpoints() {
	grep -q 'enable-aggregator-routing' "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/kwok.yaml" 2>/dev/null
}

up() {
	if cluster_exists && ! routes_to_endpoints; then
		log "recreating cluster $CLUSTER_NAME: its API server does not route to Service endpoints"
		kwokctl delete cluster --name "$CLUSTER_NAME" || true
	fi
	if cluster_exists; then
		[[ -f $KUBECONFIG_LOCAL ]] || write_kubeconfig
		if api_ready; then
			setup_cluster
			log "cluster $CLUSTER_NAME is running (kubeconfig: $KUBECONFIG_LOCAL)"
			return
		fi
		# The processes are gone (a reboot, a killed session): start them again,
		# or start over when kwokctl cannot.
		log "starting the stopped cluster $CLUSTER_NAME"
		if ! kwokctl start cluster --name "$CLUSTER_NAME" --wait 3m; then
			log "restart failed; recreating cluster $CLUSTER_NAME"
			kwokctl delete cluster --name "$CLUSTER_NAME" || true
			create_cluster
		fi
	else
		create_cluster
	fi
	write_kubeconfig
	setup_cluster
	log "cluster $CLUSTER_NAME is ready (kubeconfig: $KUBECONFIG_LOCAL)"
}

down() {
	if cluster_exists; then
		kwokctl delete cluster --name "$CLUSTER_NAME"
	fi
	rm -f "$KUBECONFIG_LOCAL"
}

# kwokctl starts only the components that are not running; their pids are
# in the cluster's workdir.
restart() {
	local component=$1 pidfile pid
	pidfile=$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/$component.pid
	pid=$(cat "$pidfile") || { log "no pid file for $component"; return 1; }
	kill -TERM "$pid"
	# Gone, or a zombie no one has reaped yet.
	if ! wait_until "$component (pid $pid) to stop" 30 exited "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_until "$component (pid $pid) to be killed" 30 exited "$pid"
	fi
	# kwokctl would take a zombie's pid for a running component.
	rm -f "$pidfile"
	kwokctl start cluster --name "$CLUSTER_NAME" --wait 3m >&2
}

exited() { [[ ! -e /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

case ${1:-} in
up) up ;;
down) down ;;
restart)
	[[ -n ${2:-} ]] || { log "usage: $0 restart COMPONENT"; exit 2; }
	restart "$2"
	;;
*)
	log "usage: $0 up|down|restart COMPONENT"
	exit 2
	;;
esac
