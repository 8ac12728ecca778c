package policy

import (
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

// ServiceNameOf is Workload.ServiceNameOrDefault of a StatefulSet.
func ServiceNameOf(sts *appsv1.StatefulSet) string {
	return FromStatefulSet(sts).ServiceNameOrDefault()
}

// HeadlessService is the Service statekeeper keeps for a stateful StatefulSet
// (docs/spec.md §3): headless, publishing not-ready pods so that peers resolve each
// other before they are ready, selecting the StatefulSet's pods, exposing the
// containers' named ports, and owned by the StatefulSet so that the garbage
// collector deletes it with the StatefulSet.
func HeadlessService(sts *appsv1.StatefulSet) *corev1.Service {
	labels := map[string]string{LabelManagedBy: ManagerName}
	// A component label that is not a valid label value (a name longer than
	// 63 characters) is left out rather than making the Service unstorable.
	if c := FromStatefulSet(sts).Component(); len(validation.IsValidLabelValue(c)) == 0 {
		labels[LabelComponent] = c
	}
	var selector map[string]string
	if sts.Spec.Selector != nil && len(sts.Spec.Selector.MatchLabels) > 0 {
		selector = maps.Clone(sts.Spec.Selector.MatchLabels)
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            ServiceNameOf(sts),
			Namespace:       sts.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ownerReference(sts)},
		},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selector,
			Ports:                    namedPorts(&sts.Spec.Template.Spec),
		},
	}
}

// ownerReference makes the StatefulSet the Service's controller, so the
// garbage collector deletes the Service with it. It does not set
// blockOwnerDeletion: with the OwnerReferencesPermissionEnforcement admission
// plugin (OpenShift and other hardened clusters) that needs update on
// statefulsets/finalizers, a right statekeeper has no other use for; all it
// would add is that a foreground deletion of the StatefulSet waits for the
// Service.
func ownerReference(sts *appsv1.StatefulSet) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: appsv1.SchemeGroupVersion.String(),
		Kind:       string(KindStatefulSet),
		Name:       sts.Name,
		UID:        sts.UID,
		Controller: ptr.To(true),
	}
}

// namedPorts are the Service ports for the pod's named container ports, the
// first of each name winning. Sidecars (init containers that keep running)
// count; unnamed ports do not, since peers address ports by name. A port
// whose number and protocol are taken is skipped too: the API server rejects
// a Service that lists the same port twice. No named port, no ports: a
// headless Service needs none to give the pods their DNS names.
func namedPorts(spec *corev1.PodSpec) []corev1.ServicePort {
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	var out []corev1.ServicePort
	names := map[string]bool{}
	numbers := map[portKey]bool{}
	add := func(containers []corev1.Container, sidecarsOnly bool) {
		for _, c := range containers {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range c.Ports {
				protocol := p.Protocol
				if protocol == "" {
					protocol = corev1.ProtocolTCP // the API server's default
				}
				key := portKey{p.ContainerPort, protocol}
				if p.Name == "" || names[p.Name] || numbers[key] {
					continue
				}
				names[p.Name], numbers[key] = true, true
				out = append(out, corev1.ServicePort{
					Name:       p.Name,
					Protocol:   protocol,
					Port:       p.ContainerPort,
					TargetPort: intstr.FromString(p.Name),
				})
			}
		}
	}
	add(spec.Containers, false)
	add(spec.InitContainers, true)
	return out
}

// IsManagedService reports whether statekeeper manages svc.
func IsManagedService(svc *corev1.Service) bool {
	return svc.Labels[LabelManagedBy] == ManagerName
}

// IsHeadless reports whether svc gives its pods per-pod DNS names.
func IsHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// GivesPodDNSNames reports whether the pods of a stateful StatefulSet get
// per-pod DNS names ("db-0.db.shop.svc.cluster.local") under svc, the Service
// its spec.serviceName names (nil when none exists). A headless Service gives
// them, and so will the Service statekeeper creates (none exists yet) or
// recreates headless (its own); a Service of someone else's with a cluster IP
// never does, and statekeeper leaves it alone (the ClusterIP Service a
// single-instance or gossip chart names, headless-conflict).
func GivesPodDNSNames(svc *corev1.Service) bool {
	return svc == nil || IsManagedService(svc) || IsHeadless(svc)
}

// ServiceAction is what the reconciler does about a StatefulSet's Service.
type ServiceAction string

const (
	// ServiceInSync: the managed Service is as desired.
	ServiceInSync ServiceAction = "in-sync"
	// ServiceCreate: no Service of that name exists.
	ServiceCreate ServiceAction = "create"
	// ServiceUpdate: the managed Service drifted in a field statekeeper owns.
	ServiceUpdate ServiceAction = "update"
	// ServiceRecreate: the managed Service is no longer headless. clusterIP is
	// immutable, so it must be deleted and created again.
	ServiceRecreate ServiceAction = "recreate"
	// ServiceForeign: a headless Service statekeeper does not manage; it
	// serves the pods, so it is left alone without complaint (the usual case
	// of a Helm chart that ships its own).
	ServiceForeign ServiceAction = "foreign"
	// ServiceConflict: a Service statekeeper must not touch and that does not
	// serve the StatefulSet; it is left alone and Reason says why.
	ServiceConflict ServiceAction = "conflict"
)

// ServicePlan is the reconciler's next step for one StatefulSet.
type ServicePlan struct {
	Action ServiceAction
	// Service is the object to create (Create, Recreate) or the repaired
	// current object to write back (Update); nil otherwise.
	Service *corev1.Service
	// Reason explains a Conflict to the user, naming the Service.
	Reason string
}

// PlanHeadlessService compares the Service of the StatefulSet's service name
// (current, nil when none exists) with what statekeeper wants and says what
// to do. Only the fields statekeeper owns are compared and written: its two
// labels, its owner reference, and the selector, ports and
// publishNotReadyAddresses; anything else users or other controllers set on
// a managed Service is kept.
func PlanHeadlessService(sts *appsv1.StatefulSet, current *corev1.Service) ServicePlan {
	desired := HeadlessService(sts)
	if current == nil {
		return ServicePlan{Action: ServiceCreate, Service: desired}
	}
	if !IsManagedService(current) {
		if IsHeadless(current) {
			return ServicePlan{Action: ServiceForeign}
		}
		return ServicePlan{Action: ServiceConflict, Reason: msgServiceNotHeadless(current.Name, current.Spec.ClusterIP, sts.Name)}
	}
	if other, ok := otherController(current, sts); ok {
		return ServicePlan{Action: ServiceConflict, Reason: msgServiceOfAnother(current.Name, other)}
	}
	if !IsHeadless(current) {
		return ServicePlan{Action: ServiceRecreate, Service: desired}
	}
	repaired, changed := repairService(current, desired)
	if !changed {
		return ServicePlan{Action: ServiceInSync}
	}
	return ServicePlan{Action: ServiceUpdate, Service: repaired}
}

// otherController names the controller of svc when that is not sts. A
// StatefulSet of the same name with another UID is an earlier incarnation
// (deleted with its dependents orphaned), so sts adopts the Service.
func otherController(svc *corev1.Service, sts *appsv1.StatefulSet) (string, bool) {
	ref := metav1.GetControllerOfNoCopy(svc)
	if ref == nil || ref.UID == sts.UID {
		return "", false
	}
	if ref.APIVersion == appsv1.SchemeGroupVersion.String() && ref.Kind == string(KindStatefulSet) && ref.Name == sts.Name {
		return "", false
	}
	return fmt.Sprintf("%s %q", ref.Kind, ref.Name), true
}

// repairService returns a copy of current with the fields statekeeper owns
// taken from desired, and whether any of them differed.
func repairService(current, desired *corev1.Service) (*corev1.Service, bool) {
	out := current.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, key := range []string{LabelManagedBy, LabelComponent} {
		if v, ok := desired.Labels[key]; ok {
			out.Labels[key] = v
		} else {
			delete(out.Labels, key)
		}
	}
	out.OwnerReferences = withControllerReference(out.OwnerReferences, desired.OwnerReferences[0])
	out.Spec.Selector = desired.Spec.Selector
	out.Spec.Ports = desired.Spec.Ports
	out.Spec.PublishNotReadyAddresses = desired.Spec.PublishNotReadyAddresses

	// Semantic equality treats nil and empty maps and lists alike, as the
	// API server does when it stores them.
	changed := !equality.Semantic.DeepEqual(current.Labels, out.Labels) ||
		!equality.Semantic.DeepEqual(current.OwnerReferences, out.OwnerReferences) ||
		!equality.Semantic.DeepEqual(current.Spec, out.Spec)
	return out, changed
}

// withControllerReference puts ref in place of the reference to the same
// owner (keeping the list's order stable), drops any other controller
// reference (an object has one controller), and keeps the rest.
func withControllerReference(refs []metav1.OwnerReference, ref metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs)+1)
	placed := false
	for _, r := range refs {
		switch {
		case r.UID == ref.UID && !placed:
			// blockOwnerDeletion as stored: Services made by an earlier
			// statekeeper keep theirs, and keeping a value needs no right.
			kept := ref
			kept.BlockOwnerDeletion = r.BlockOwnerDeletion
			out = append(out, kept)
			placed = true
		case r.UID == ref.UID, r.Controller != nil && *r.Controller:
			// a duplicate of ref, or another controller: dropped
		default:
			out = append(out, r)
		}
	}
	if !placed {
		out = append(out, ref)
	}
	return out
}
