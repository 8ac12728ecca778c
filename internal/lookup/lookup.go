// Package lookup answers the questions the rules ask about the cluster. The
// server answers them from the manager's indexed caches; `statekeeper check`
// answers them from the objects that precede the one being checked.
package lookup

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Lookup is the cluster state the review engine reads. Every method returns
// (zero value, nil) when the object does not exist; an error means the state
// could not be read.
type Lookup interface {
	// Workload returns the stored Deployment or StatefulSet.
	Workload(ctx context.Context, kind policy.Kind, namespace, name string) (*policy.Workload, error)
	// PodsExist reports whether any pod of the namespace, terminating ones
	// included, matches a workload's selector; a missing, invalid or empty
	// selector selects none.
	PodsExist(ctx context.Context, namespace string, selector *metav1.LabelSelector) (bool, error)
	// Component returns the workloads of one kind whose component (label, or
	// name when unlabelled) is component, in the namespace.
	Component(ctx context.Context, kind policy.Kind, namespace, component string) ([]policy.Observed, error)
	// Claims returns the existing claims among names, keyed by name.
	Claims(ctx context.Context, namespace string, names []string) (map[string]*corev1.PersistentVolumeClaim, error)
	// Service returns the Service of that name.
	Service(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// StatefulSet returns the StatefulSet of that name (a pod's owner). When
	// uid is set, the incarnation with that uid is wanted: an implementation
	// whose copy is missing or older reads the source of truth.
	StatefulSet(ctx context.Context, namespace, name string, uid types.UID) (*appsv1.StatefulSet, error)
	// StorageClasses returns every StorageClass of the cluster, in no
	// particular order (a cluster has a handful).
	StorageClasses(ctx context.Context) ([]storagev1.StorageClass, error)
	// NamespaceMode returns the namespace's statekeeper.io/mode label; ok is
	// false when the label is absent (the default mode applies).
	NamespaceMode(ctx context.Context, namespace string) (mode string, ok bool, err error)
	// NamespaceProtected reports whether the namespace carries the
	// statekeeper.io/protect: "true" label (false when it is unknown).
	NamespaceProtected(ctx context.Context, namespace string) (bool, error)
}
