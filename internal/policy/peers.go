package policy

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// PeersUpdate returns the annotations to write on a running pod of owner
// (a JSON merge patch of metadata.annotations: a nil value removes the key)
// so that its statekeeper.io/peers lists the ordinals owner wants now, and
// ok false when they already do. Pod annotations are mutable and a
// downward-API volume shows the new value without a restart; environment
// variables (statekeeper.io/inject-env) cannot change and keep the peers of
// the pod's creation.
//
// Only pods statekeeper stamped (they carry statekeeper.io/ordinal) are
// updated; pod needs its name, namespace, labels and those annotations only.
//
// svc is the Service owner's spec.serviceName names (nil when none exists).
// When it gives the pods no DNS names (GivesPodDNSNames), no peers are
// written, and the names a pod was stamped with before (it carries
// statekeeper.io/peers-replicas) are removed: they would not resolve.
func PeersUpdate(pod *corev1.Pod, owner *appsv1.StatefulSet, svc *corev1.Service, clusterDomain string) (map[string]*string, bool, error) {
	if pod == nil || owner == nil || pod.Annotations[AnnotationOrdinal] == "" {
		return nil, false, nil
	}
	if !GivesPodDNSNames(svc) {
		if _, stamped := pod.Annotations[AnnotationPeersReplicas]; !stamped {
			return nil, false, nil
		}
		return map[string]*string{AnnotationFQDN: nil, AnnotationPrimaryFQDN: nil, AnnotationPeers: nil, AnnotationPeersReplicas: nil}, true, nil
	}
	id, err := PodIdentity(pod, owner, clusterDomain)
	if err != nil {
		return nil, false, err
	}
	replicas := strconv.Itoa(int(id.Replicas))
	if pod.Annotations[AnnotationPeersReplicas] == replicas {
		return nil, false, nil
	}
	update := map[string]*string{AnnotationPeersReplicas: &replicas, AnnotationPeers: nil}
	if id.Peers != nil {
		peers := strings.Join(id.Peers, ",")
		update[AnnotationPeers] = &peers
	}
	return update, true, nil
}
