package check

import (
	"cmp"
	"slices"
)

// helmInstallOrder is the order in which Helm installs the objects of a
// release, by kind alone (whatever the group): Helm v4's InstallOrder in
// pkg/release/v1/util/kind_sorter.go (github.com/helm/helm). Kept as data
// so that check needs no Helm dependency; update it with Helm's.
var helmInstallOrder = []string{
	"PriorityClass",
	"Namespace",
	"NetworkPolicy",
	"ResourceQuota",
	"LimitRange",
	"PodSecurityPolicy",
	"PodDisruptionBudget",
	"ServiceAccount",
	"Secret",
	"SecretList",
	"ConfigMap",
	"StorageClass",
	"PersistentVolume",
	"PersistentVolumeClaim",
	"CustomResourceDefinition",
	"ClusterRole",
	"ClusterRoleList",
	"ClusterRoleBinding",
	"ClusterRoleBindingList",
	"Role",
	"RoleList",
	"RoleBinding",
	"RoleBindingList",
	"Service",
	"DaemonSet",
	"Pod",
	"ReplicationController",
	"ReplicaSet",
	"Deployment",
	"HorizontalPodAutoscaler",
	"StatefulSet",
	"Job",
	"CronJob",
	"IngressClass",
	"Ingress",
	"APIService",
	"MutatingWebhookConfiguration",
	"ValidatingWebhookConfiguration",
}

// installRank is each kind's place in helmInstallOrder.
var installRank = func() map[string]int {
	rank := make(map[string]int, len(helmInstallOrder))
	for i, kind := range helmInstallOrder {
		rank[kind] = i
	}
	return rank
}()

// compareInstallOrder orders two kinds as Helm's kind sorter does (lessByKind):
// known kinds by helmInstallOrder, unknown kinds after them by name.
func compareInstallOrder(a, b string) int {
	ra, aKnown := installRank[a]
	rb, bKnown := installRank[b]
	switch {
	case aKnown && bKnown:
		return cmp.Compare(ra, rb)
	case aKnown:
		return -1
	case bKnown:
		return 1
	}
	return cmp.Compare(a, b)
}

// sortForInstall puts docs in the order the cluster sees them when Helm
// installs them: by kind in Helm's install order, keeping the input's order
// within a kind (Helm sorts stably, after its templates in path order). An
// object that names a controller (an ownerReference with controller: true,
// such as a StatefulSet's pod) is created by that controller once its owner
// exists, not by Helm: those come after the others, in the same kind order.
func sortForInstall(docs []document) {
	slices.SortStableFunc(docs, func(a, b document) int {
		return cmp.Or(compareBool(a.controlled(), b.controlled()), compareInstallOrder(a.gvk.Kind, b.gvk.Kind))
	})
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
