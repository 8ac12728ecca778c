// Package lookup answers the questions the rules ask about the cluster. The
// server answers them from the manager's indexed caches; `statekeeper check`
// answers them from the objects that precede the one being checked.
package lookup

import (
	"context"
	"errors"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// ErrUnknownKind is the error of a workload lookup for a kind statekeeper
// does not manage: a caller's bug, never a miss.
var ErrUnknownKind = errors.New("unknown workload kind")

// Lookup is the cluster state the review engine reads. The contract, which
// TestLookups holds for both implementations:
//   - A miss is (zero value, nil): a nil object, an empty list or map, false.
//     An error means the state could not be read, or ErrUnknownKind.
//   - Lists are ordered by name, so that messages naming them are stable.
//   - Reads come from the implementation's store (Cache: the informer caches;
//     Memory: what was added). Only the reads documented below also read the
//     API server on a miss, and only in Cache; Memory is its own truth.
//   - What a read returns is the caller's to read, not to write: it may share
//     maps and slices with the store's own object.
type Lookup interface {
	// Workload returns the stored Deployment or StatefulSet; another kind is
	// ErrUnknownKind.
	Workload(ctx context.Context, kind policy.Kind, namespace, name string) (*policy.Workload, error)
	// PodsExist reports whether any pod of the namespace, terminating ones
	// included, matches a workload's selector; a missing, invalid or empty
	// selector selects none.
	PodsExist(ctx context.Context, namespace string, selector *metav1.LabelSelector) (bool, error)
	// Component returns the workloads of one kind whose component (label, or
	// name when unlabelled; policy.Workload.Component) is component, in the
	// namespace, labelled or not, by name; another kind is ErrUnknownKind.
	Component(ctx context.Context, kind policy.Kind, namespace, component string) ([]policy.Observed, error)
	// Claims returns the existing claims among names, keyed by name.
	Claims(ctx context.Context, namespace string, names []string) (map[string]*corev1.PersistentVolumeClaim, error)
	// Service returns the Service of that name, managed by statekeeper or
	// not. Cache reads its cache only: a Service it has not seen yet is a
	// miss (see Cache.Service for why).
	Service(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// StatefulSet returns the StatefulSet of that name (a pod's owner). When
	// uid is set, the incarnation with that uid is wanted: Cache reads the API
	// server when its copy is missing or another incarnation.
	StatefulSet(ctx context.Context, namespace, name string, uid types.UID) (*appsv1.StatefulSet, error)
	// StorageClasses returns every StorageClass of the cluster, in no
	// particular order (a cluster has a handful).
	StorageClasses(ctx context.Context) ([]storagev1.StorageClass, error)
	// NamespaceMode returns the namespace's statekeeper.io/mode label; ok is
	// false when the label or the namespace is absent (the default mode
	// applies). Cache reads a namespace it has not seen from the API server.
	NamespaceMode(ctx context.Context, namespace string) (mode string, ok bool, err error)
	// Autoscalers returns the HorizontalPodAutoscalers of the namespace whose
	// scale target is the apps/* workload of that kind and name, ordered by
	// name; none is an empty result.
	Autoscalers(ctx context.Context, namespace string, kind policy.Kind, name string) ([]policy.Autoscaler, error)
	// NamespaceProtected reports whether the namespace carries the
	// statekeeper.io/protect: "true" label (false when it is unknown).
	NamespaceProtected(ctx context.Context, namespace string) (bool, error)
}
