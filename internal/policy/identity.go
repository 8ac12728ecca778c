package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod annotations statekeeper writes (docs/spec.md §5).
const (
	AnnotationOrdinal     = "statekeeper.io/ordinal"
	AnnotationHostname    = "statekeeper.io/hostname"
	AnnotationService     = "statekeeper.io/service"
	AnnotationFQDN        = "statekeeper.io/fqdn"
	AnnotationPrimaryFQDN = "statekeeper.io/primary-fqdn"
	AnnotationPeers       = "statekeeper.io/peers"
	// AnnotationPeersReplicas records the replica count the peers reflect;
	// the peers reconciler brings it (and the peers) up to date on a scale.
	AnnotationPeersReplicas = "statekeeper.io/peers-replicas"
)

// Environment variables injected with statekeeper.io/inject-env (docs/spec.md §5).
const (
	EnvOrdinal     = "STATEKEEPER_ORDINAL"
	EnvFQDN        = "STATEKEEPER_FQDN"
	EnvPrimaryFQDN = "STATEKEEPER_PRIMARY_FQDN"
	EnvService     = "STATEKEEPER_SERVICE"
	EnvPeers       = "STATEKEEPER_PEERS"
)

// DefaultClusterDomain is the DNS domain PodIdentity uses when given none.
const DefaultClusterDomain = "cluster.local"

// maxPeersLength bounds the peers list. Annotations share a 256 KiB budget per
// object, so a StatefulSet with tens of thousands of replicas would otherwise
// make its own pods unadmittable; past the bound the peers are left out.
const maxPeersLength = 64 << 10

// Identity is the stable identity of one StatefulSet pod.
type Identity struct {
	Ordinal     int32
	Hostname    string
	Service     string
	FQDN        string
	PrimaryFQDN string
	// Peers are the FQDNs of every ordinal the StatefulSet wanted when the pod
	// was created (empty, not nil, at zero replicas); nil when the list would
	// exceed maxPeersLength, and then the peers are not stamped.
	Peers []string
	// Replicas is the replica count Peers reflects.
	Replicas int32
	// NoDNSNames is true when the pods get no per-pod DNS names (their
	// Service is someone else's and not headless, GivesPodDNSNames): FQDN,
	// PrimaryFQDN and Peers are then empty, and nothing naming them is
	// stamped, so that every annotation statekeeper writes is true.
	NoDNSNames bool
}

// withoutDNSNames is id for pods that get no per-pod DNS names.
func (id Identity) withoutDNSNames() Identity {
	return Identity{Ordinal: id.Ordinal, Hostname: id.Hostname, Service: id.Service, NoDNSNames: true}
}

// InjectEnvRequested reports whether the StatefulSet asks for the identity as
// environment variables too (on itself or its pod template).
func InjectEnvRequested(sts *appsv1.StatefulSet) bool {
	return FromStatefulSet(sts).injectEnv()
}

func (w Workload) injectEnv() bool { return w.Annotations[AnnotationInjectEnv] == "true" }

// StatefulSetOwner returns the name of the StatefulSet that controls pod: the
// controller owner reference of kind apps/v1 StatefulSet.
func StatefulSetOwner(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.APIVersion != appsv1.SchemeGroupVersion.String() || ref.Kind != string(KindStatefulSet) || ref.Name == "" {
		return "", false
	}
	return ref.Name, true
}

// StampStatefulPod is the whole pod-stamping decision (docs/spec.md §5) for a pod
// controlled by owner, whose spec.serviceName names svc (nil when no Service
// of that name exists): managed is false, and there is nothing to do, unless
// owner is a stateful-* StatefulSet; otherwise the patch stamps the pod's
// identity, with environment variables when owner asks for them, and without
// DNS names when svc gives none (GivesPodDNSNames).
func StampStatefulPod(pod *corev1.Pod, owner *appsv1.StatefulSet, svc *corev1.Service, clusterDomain string) (ops []jsonpatch.Operation, managed bool, err error) {
	if pod == nil || owner == nil {
		return nil, false, nil
	}
	if t, ok, err := FromStatefulSet(owner).DeployType(); !ok || err != nil || !t.Stateful() {
		return nil, false, nil
	}
	id, err := PodIdentity(pod, owner, clusterDomain)
	if err != nil {
		return nil, true, err
	}
	if !GivesPodDNSNames(svc) {
		id = id.withoutDNSNames()
	}
	return StampPod(pod, id, InjectEnvRequested(owner)), true, nil
}

// PodIdentity computes the identity of pod, created by owner, whose DNS names
// end in clusterDomain (DefaultClusterDomain when empty). The ordinal comes
// from the apps.kubernetes.io/pod-index label the StatefulSet controller sets,
// or from the "<owner>-<ordinal>" name for clusters older than that label.
func PodIdentity(pod *corev1.Pod, owner *appsv1.StatefulSet, clusterDomain string) (Identity, error) {
	if pod == nil || owner == nil {
		return Identity{}, errors.New("pod identity needs both the pod and its statefulset")
	}
	if pod.Name == "" {
		return Identity{}, errors.New("pod has no name: a statefulset pod is always named <statefulset>-<ordinal>")
	}
	ordinal, err := podOrdinal(pod, owner.Name)
	if err != nil {
		return Identity{}, err
	}
	namespace := pod.Namespace
	if namespace == "" {
		namespace = owner.Namespace
	}
	if namespace == "" {
		return Identity{}, fmt.Errorf("pod %q has no namespace", pod.Name)
	}
	start := int32(0)
	if owner.Spec.Ordinals != nil {
		start = owner.Spec.Ordinals.Start
	}
	if start < 0 {
		return Identity{}, fmt.Errorf("statefulset %q has a negative spec.ordinals.start %d", owner.Name, start)
	}
	sts := FromStatefulSet(owner)
	replicas := sts.DesiredReplicas()
	service := sts.ServiceNameOrDefault()
	// "<host>.<service>.<namespace>.svc.<domain>", the name the cluster DNS
	// gives a pod whose subdomain is a headless Service.
	domain := strings.TrimSuffix(clusterDomain, ".")
	if domain == "" {
		domain = DefaultClusterDomain
	}
	suffix := "." + service + "." + namespace + ".svc." + domain
	fqdnOf := func(ordinal int64) string { return owner.Name + "-" + strconv.FormatInt(ordinal, 10) + suffix }

	return Identity{
		Ordinal:     ordinal,
		Hostname:    pod.Name,
		Service:     service,
		FQDN:        pod.Name + suffix,
		PrimaryFQDN: fqdnOf(int64(start)),
		Peers:       peers(int64(start), int64(replicas), fqdnOf),
		Replicas:    replicas,
	}, nil
}

// podOrdinal reads the pod-index label when it holds an ordinal, else the name suffix.
func podOrdinal(pod *corev1.Pod, owner string) (int32, error) {
	if v, ok := pod.Labels[appsv1.PodIndexLabel]; ok {
		if n, ok := parseOrdinal(v); ok {
			return n, nil
		}
	}
	prefix := owner + "-"
	if rest, ok := strings.CutPrefix(pod.Name, prefix); ok {
		if n, ok := parseOrdinal(rest); ok {
			return n, nil
		}
	}
	return 0, fmt.Errorf("pod %q has no ordinal: neither a valid %s label nor a name of the form %q",
		pod.Name, appsv1.PodIndexLabel, prefix+"<ordinal>")
}

// parseOrdinal accepts decimal digits only (no sign) that fit an int32.
func parseOrdinal(s string) (int32, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// peers lists the FQDNs of ordinals start..start+replicas-1, or nil when they
// would not fit maxPeersLength. int64 keeps start+replicas from overflowing.
func peers(start, replicas int64, fqdnOf func(int64) string) []string {
	out := make([]string, 0, max(0, min(replicas, 64)))
	length := 0
	for ordinal := start; ordinal < start+replicas; ordinal++ {
		fqdn := fqdnOf(ordinal)
		length += len(fqdn) + 1
		if length > maxPeersLength {
			return nil
		}
		out = append(out, fqdn)
	}
	return out
}

// annotation is one key and value, kept in a slice so patches come out in a stable order.
type annotation struct{ key, value string }

// annotations are the identity's pod annotations, in the order they are patched.
func (id Identity) annotations() []annotation {
	out := []annotation{
		{AnnotationOrdinal, strconv.Itoa(int(id.Ordinal))},
		{AnnotationHostname, id.Hostname},
		{AnnotationService, id.Service},
	}
	if id.NoDNSNames {
		return out
	}
	out = append(out,
		annotation{AnnotationFQDN, id.FQDN},
		annotation{AnnotationPrimaryFQDN, id.PrimaryFQDN},
	)
	if id.Peers != nil {
		out = append(out, annotation{AnnotationPeers, strings.Join(id.Peers, ",")})
	}
	return append(out, annotation{AnnotationPeersReplicas, strconv.Itoa(int(id.Replicas))})
}

// env is the identity as environment variables, in the order they are injected.
func (id Identity) env() []corev1.EnvVar {
	if id.NoDNSNames {
		return []corev1.EnvVar{
			{Name: EnvOrdinal, Value: strconv.Itoa(int(id.Ordinal))},
			{Name: EnvService, Value: id.Service},
		}
	}
	out := []corev1.EnvVar{
		{Name: EnvOrdinal, Value: strconv.Itoa(int(id.Ordinal))},
		{Name: EnvFQDN, Value: id.FQDN},
		{Name: EnvPrimaryFQDN, Value: id.PrimaryFQDN},
		{Name: EnvService, Value: id.Service},
	}
	if id.Peers != nil {
		out = append(out, corev1.EnvVar{Name: EnvPeers, Value: strings.Join(id.Peers, ",")})
	}
	return out
}

// StampPod returns the JSON patch, against the pod's raw JSON, that writes id
// as annotations and, with injectEnv, as environment variables of every
// container and init container. It only references paths the pod has (an
// empty map or list is added whole), and yields no operations once applied.
//
// Variables the user set (by value or valueFrom) are never overwritten.
// Variables that come from envFrom cannot be seen at admission; the injected
// ones take precedence over them.
func StampPod(pod *corev1.Pod, id Identity, injectEnv bool) []jsonpatch.Operation {
	var patch patchBuilder
	var stale []member
	for _, a := range id.annotations() {
		if current, ok := pod.Annotations[a.key]; !ok || current != a.value {
			stale = append(stale, member{key: a.key, value: a.value, present: ok})
		}
	}
	patch.setMembers(stale, step("metadata", !isZero(pod.ObjectMeta)), step("annotations", len(pod.Annotations) > 0))
	if !injectEnv {
		return patch.ops
	}
	env := id.env()
	for i := range pod.Spec.InitContainers {
		appendIdentityEnv(&patch, "initContainers", i, pod.Spec.InitContainers[i].Env, env)
	}
	for i := range pod.Spec.Containers {
		appendIdentityEnv(&patch, "containers", i, pod.Spec.Containers[i].Env, env)
	}
	return patch.ops
}

// appendIdentityEnv appends to the env of container i of list the variables of wanted
// that current does not name.
func appendIdentityEnv(patch *patchBuilder, list string, i int, current, wanted []corev1.EnvVar) {
	set := make(map[string]bool, len(current))
	for _, e := range current {
		set[e.Name] = true
	}
	var missing []corev1.EnvVar
	for _, e := range wanted {
		if !set[e.Name] {
			missing = append(missing, e)
		}
	}
	// A listed container exists in the raw JSON, and so do spec and the list.
	appendItems(patch, missing, step("spec", true), step(list, true), step(strconv.Itoa(i), true), step("env", len(current) > 0))
}
