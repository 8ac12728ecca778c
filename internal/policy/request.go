package policy

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// The requests the rules and mutations judge: the object together with the
// cluster facts the review engine gathered for it.

// Operation is the admission operation of a request, as the API server
// names it (admission.k8s.io's Operation): statekeeper's one type for it.
type Operation string

// The operations; statekeeper reviews CREATE and UPDATE, and the webhooks
// allow DELETE and CONNECT untouched.
const (
	OpCreate  Operation = "CREATE"
	OpUpdate  Operation = "UPDATE"
	OpDelete  Operation = "DELETE"
	OpConnect Operation = "CONNECT"
)

// WorkloadRequest is a CREATE or UPDATE of a Deployment or StatefulSet
// together with the cluster facts the rules need, gathered by the caller.
type WorkloadRequest struct {
	Operation Operation
	Object    Workload
	// Written are Object's keys where its manifest writes them, for the
	// unknown-key rule (none: nothing to judge), and for the mutations,
	// which write the object's own annotations.
	Written WrittenKeys
	// Old is the stored object on UPDATE, nil on CREATE.
	Old *Observed
	// Counterparts are, on CREATE, the workloads of the other kind with the
	// same component in the namespace, labelled or not.
	Counterparts []Observed
	// Claims holds the existing claims named by the pod template's claim
	// volumes (Storage.ClaimNames); a name absent from the map is a claim
	// that was not found.
	Claims map[string]*corev1.PersistentVolumeClaim
	// Service is, on CREATE of a stateful-* StatefulSet, the existing Service
	// named by spec.serviceName (after mutation), or nil.
	Service *corev1.Service
	// StorageClasses are the cluster's classes, looked up on a StatefulSet
	// UPDATE that changes statekeeper.io/storage-size or the storage request
	// of a claim template (nil otherwise).
	StorageClasses []storagev1.StorageClass
	// TemplateClaims are, on a StatefulSet UPDATE that changes the storage
	// request of a claim template (ResizesClaimTemplates), the existing
	// claims of its templates (TemplateClaimNames).
	TemplateClaims []corev1.PersistentVolumeClaim
	// ClaimTemplatesMutable: the API server lets a StatefulSet's claim
	// templates change (KEP-4650), so a larger size is left in the
	// template instead of being recorded.
	ClaimTemplatesMutable bool
	// Autoscalers are, on CREATE of a *-single workload, the existing
	// HorizontalPodAutoscalers whose scale target is the workload.
	Autoscalers []Autoscaler
}

// Autoscaler is a HorizontalPodAutoscaler as the rules read it.
type Autoscaler struct {
	Name        string
	MaxReplicas int32
}
