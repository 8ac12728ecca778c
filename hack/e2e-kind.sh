#!/usr/bin/env bash
# Prepares a kind cluster for the e2e suite (make e2e-kind): creates the
# cluster from the pinned node image unless it exists, loads the statekeeper
# image built by `make docker-build` into its nodes from a single-platform
# archive, and installs cert-manager from its release manifest, waiting until
# cert-manager's webhook admits its own objects.
# Needs Docker; the Makefile passes the tools and names below.
set -euo pipefail

: "${KIND:?}" "${KIND_CLUSTER:?}" "${KIND_NODE_IMAGE:?}" "${KIND_KUBECONFIG:?}" "${KUBECTL:?}"
: "${IMG:?}" "${IMG_PLATFORM:?}" "${IMG_ARCHIVE:?}" "${CERT_MANAGER_VERSION:?}"

kubectl() { "$KUBECTL" --kubeconfig "$KIND_KUBECONFIG" "$@"; }
log() { printf '%s\n' "$*" >&2; }

mkdir -p "$(dirname "$KIND_KUBECONFIG")"
if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
	log "reusing kind cluster $KIND_CLUSTER"
	"$KIND" export kubeconfig --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG"
	want=${KIND_NODE_IMAGE%@*}
	want=${want##*:}
	have=$(kubectl get nodes -o jsonpath='{.items[0].status.nodeInfo.kubeletVersion}')
	if [[ $have != "$want" ]]; then
		log "kind cluster $KIND_CLUSTER runs Kubernetes $have, not $want of KIND_NODE_IMAGE; delete it (kind delete cluster --name $KIND_CLUSTER) to test the pinned version"
	fi
else
	"$KIND" create cluster --name "$KIND_CLUSTER" --image "$KIND_NODE_IMAGE" --kubeconfig "$KIND_KUBECONFIG" --wait 3m
fi

# `kind load docker-image` fails on Docker's containerd image store, whose
# images are multi-platform indexes (kind issue #3795): save one platform to
# an archive and load that. Docker before 27 has no --platform on save, and
# its classic store holds one platform anyway. A tag other than :latest keeps
# the chart's imagePullPolicy IfNotPresent from pulling what kind loaded.
mkdir -p "$(dirname "$IMG_ARCHIVE")"
if docker save --help 2>/dev/null | grep -q -- '--platform'; then
	docker save --platform "$IMG_PLATFORM" --output "$IMG_ARCHIVE" "$IMG"
else
	docker save --output "$IMG_ARCHIVE" "$IMG"
fi
"$KIND" load image-archive "$IMG_ARCHIVE" --name "$KIND_CLUSTER"
rm -f "$IMG_ARCHIVE"

kubectl apply --server-side --force-conflicts \
	-f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml" >/dev/null
kubectl wait --for=condition=Available deployment --all --namespace cert-manager --timeout=5m

# What `cmctl check api` does: the Deployments can be Available before the
# CA injector has given cert-manager's own webhook its CA bundle, and until
# then the API server refuses every Issuer and Certificate.
probe='{"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "e2e-probe", "namespace": "cert-manager"},
        "spec": {"selfSigned": {}}}'
for _ in $(seq 1 120); do
	if kubectl create --dry-run=server -f - >/dev/null 2>&1 <<<"$probe"; then
		log "cert-manager $CERT_MANAGER_VERSION is ready in kind cluster $KIND_CLUSTER"
		exit 0
	fi
	sleep 1
done
log "cert-manager's webhook did not admit an Issuer within 120s"
kubectl create --dry-run=server -f - <<<"$probe"
exit 1
