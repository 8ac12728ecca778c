package reconciler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The peers reconciler over a fake client: it follows a scale under a
// headless Service, and under a ClusterIP Service of the user's it writes no
// peers and removes the DNS names a pod was stamped with before.
func TestPeersReconciler(t *testing.T) {
	const fqdn = ".redis-headless.shop.svc.cluster.local"
	pod := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: "redis-1", Namespace: "shop", Labels: map[string]string{"app": "redis"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "redis", UID: "uid-redis", Controller: ptr.To(true)}},
			Annotations: map[string]string{
				policy.AnnotationOrdinal: "1", policy.AnnotationHostname: "redis-1", policy.AnnotationService: "redis-headless",
				policy.AnnotationFQDN: "redis-1" + fqdn, policy.AnnotationPrimaryFQDN: "redis-0" + fqdn,
				policy.AnnotationPeers: "redis-0" + fqdn + ",redis-1" + fqdn, policy.AnnotationPeersReplicas: "2",
			},
		}}
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		want map[string]string
	}{
		{
			name: "under statekeeper's headless service: the peers follow the scale",
			svc:  wantService(),
			want: map[string]string{
				policy.AnnotationOrdinal: "1", policy.AnnotationHostname: "redis-1", policy.AnnotationService: "redis-headless",
				policy.AnnotationFQDN: "redis-1" + fqdn, policy.AnnotationPrimaryFQDN: "redis-0" + fqdn,
				policy.AnnotationPeers: "redis-0" + fqdn + ",redis-1" + fqdn + ",redis-2" + fqdn, policy.AnnotationPeersReplicas: "3",
			},
		},
		{
			name: "under a clusterIP service of the user's: the names that never resolve are removed",
			svc:  foreignService("10.0.0.9"),
			want: map[string]string{
				policy.AnnotationOrdinal: "1", policy.AnnotationHostname: "redis-1", policy.AnnotationService: "redis-headless",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sts := redis("stateful-multi")
			sts.Spec.Replicas = ptr.To[int32](3)
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(sts, tt.svc, pod()).Build()
			r := &PeersReconciler{Client: c, ClusterDomain: "cluster.local"}
			key := types.NamespacedName{Namespace: "shop", Name: "redis"}
			for range 2 { // the second pass finds nothing to do
				res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key})
				require.NoError(t, err)
				assert.Equal(t, reconcile.Result{}, res)
			}
			var got corev1.Pod
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "redis-1"}, &got))
			assert.Equal(t, tt.want, got.Annotations)
		})
	}
}
