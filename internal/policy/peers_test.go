package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPeersUpdate(t *testing.T) {
	const fqdn0, fqdn1, fqdn2 = "db-0.db-headless.shop.svc.cluster.local",
		"db-1.db-headless.shop.svc.cluster.local", "db-2.db-headless.shop.svc.cluster.local"
	pod := func(annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "shop", Annotations: annotations}}
	}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db-headless", Namespace: "shop"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		replicas int32
		svc      *corev1.Service
		want     map[string]*string
	}{
		{"scaled from 2 to 3: peers and count updated",
			pod(map[string]string{AnnotationOrdinal: "1", AnnotationPeersReplicas: "2"}), 3, nil,
			map[string]*string{AnnotationPeers: ptr.To(fqdn0 + "," + fqdn1 + "," + fqdn2), AnnotationPeersReplicas: ptr.To("3")}},
		{"stamped before the count was recorded: updated once",
			pod(map[string]string{AnnotationOrdinal: "1"}), 2, nil,
			map[string]*string{AnnotationPeers: ptr.To(fqdn0 + "," + fqdn1), AnnotationPeersReplicas: ptr.To("2")}},
		{"in step: nothing", pod(map[string]string{AnnotationOrdinal: "1", AnnotationPeersReplicas: "2"}), 2, nil, nil},
		{"never stamped: left alone", pod(nil), 3, nil, nil},
		{"scaled to 0 while the pod terminates: an empty list",
			pod(map[string]string{AnnotationOrdinal: "1", AnnotationPeersReplicas: "2"}), 0, nil,
			map[string]*string{AnnotationPeers: ptr.To(""), AnnotationPeersReplicas: ptr.To("0")}},
		{"under a clusterIP service of the user's: no peers to write", pod(map[string]string{AnnotationOrdinal: "1"}), 3, clusterIP, nil},
		{"under a clusterIP service, stamped with DNS names before: they are removed",
			pod(map[string]string{AnnotationOrdinal: "1", AnnotationPeersReplicas: "2"}), 3, clusterIP,
			map[string]*string{AnnotationFQDN: nil, AnnotationPrimaryFQDN: nil, AnnotationPeers: nil, AnnotationPeersReplicas: nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := PeersUpdate(tt.pod, identitySTS("db", ptr.To(tt.replicas), nil, "db-headless"), tt.svc, "cluster.local")
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want != nil, ok)
		})
	}

	t.Run("peers too long: removed, the count still recorded", func(t *testing.T) {
		got, ok, err := PeersUpdate(pod(map[string]string{AnnotationOrdinal: "1"}),
			identitySTS("db", ptr.To[int32](100000), nil, "db-headless"), nil, "cluster.local")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, map[string]*string{AnnotationPeers: nil, AnnotationPeersReplicas: ptr.To("100000")}, got)
	})
}
