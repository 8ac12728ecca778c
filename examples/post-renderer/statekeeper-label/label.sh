#!/bin/sh
# label.sh KIND/NAME DEPLOY-TYPE
#
# A Helm post-renderer: reads a release's rendered manifests on stdin and
# prints them with the label statekeeper.io/deploy-type=DEPLOY-TYPE added to
# the one object KIND/NAME, so that a chart whose values only label every
# object (commonLabels) opts in its StatefulSet and not its exporter or proxy
# Deployments. It needs only kubectl (its built-in kustomize, a patch that
# targets one kind and name) and fails when no such object was rendered, so a
# typo in the name never installs the chart unmanaged.
set -eu

usage() {
	echo "usage: label.sh KIND/NAME DEPLOY-TYPE (e.g. StatefulSet/db-single-db stateful-single)" >&2
	exit 2
}
[ $# -eq 2 ] || usage
kind=${1%%/*}
name=${1#*/}
type=$2
[ -n "$kind" ] && [ -n "$name" ] && [ "$kind" != "$1" ] && [ -n "$type" ] || usage

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/manifests.yaml"
# The patch's own kind and name are ignored: the target picks the object.
# fifo keeps Helm's order of the manifests (kustomize sorts by kind otherwise).
cat >"$dir/kustomization.yaml" <<KUSTOMIZATION
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [manifests.yaml]
sortOptions:
  order: fifo
patches:
  - target:
      kind: $kind
      name: $name
    patch: |
      apiVersion: v1
      kind: $kind
      metadata:
        name: $name
        labels:
          statekeeper.io/deploy-type: $type
KUSTOMIZATION
"${KUBECTL:-kubectl}" kustomize "$dir" >"$dir/out.yaml"

# kustomize applies a patch whose target matches nothing silently. Its
# output is normalized YAML: top-level keys unindented, metadata's two spaces
# in.
if ! awk -v kind="$kind" -v name="$name" '
	function seen() { if (k && n) found = 1 }
	/^---/ { seen(); k = n = meta = 0; next }
	/^[^ ]/ { meta = ($0 == "metadata:") }
	$0 == "kind: " kind { k = 1 }
	meta && $0 == "  name: " name { n = 1 }
	END { seen(); exit !found }
' "$dir/out.yaml"; then
	echo "label.sh: the chart rendered no $kind named $name" >&2
	exit 1
fi
cat "$dir/out.yaml"
