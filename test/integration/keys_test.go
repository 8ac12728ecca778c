package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestUnknownKeysAreWarnedOf: a misspelt key is warned of with the nearest
// known one, on a managed workload by the workload webhooks and on an
// unlabelled one by the unlabelled-workloads webhook, which never denies.
func TestUnknownKeysAreWarnedOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		object   *appsv1.StatefulSet
		warnings []string
	}{
		{
			name: "managed, a misspelt annotation",
			object: func() *appsv1.StatefulSet {
				s := workloads.StatefulSet("db", policy.StatefulSingle, 1)
				s.Annotations = map[string]string{"statekeeper.io/storage_size": "5Gi"}
				return s
			}(),
			warnings: []string{`statefulset "db": statekeeper.io/storage_size (metadata.annotations) is not a key statekeeper knows, so nothing reads it: ` +
				`did you mean statekeeper.io/storage-size, an annotation of the workload (metadata.annotations) or of its pod template? [unknown-key]`},
		},
		{
			name: "unlabelled, a misspelt deploy type: told it is not managed",
			object: func() *appsv1.StatefulSet {
				s := workloads.StatefulSet("db", "", 1)
				s.Labels["statekeeper.io/deploy_type"] = string(policy.StatefulSingle)
				s.Spec.ServiceName = "db"
				s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*workloads.Claim("data", corev1.ReadWriteOnce)}
				return s
			}(),
			warnings: []string{`statefulset "db" is not managed by statekeeper: it has no statekeeper.io/deploy-type label, and statekeeper.io/deploy_type (metadata.labels) ` +
				`is not a key statekeeper knows, so nothing reads it: did you mean statekeeper.io/deploy-type, a label of the workload (metadata.labels) or of its pod template? [unknown-key]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			got := tn.admitted(func(dryRun bool) error { return tn.create(tt.object.DeepCopy(), dryRun) })
			assert.Equal(t, tt.warnings, got)
		})
	}
}

// TestEphemeralDataIsWarnedOf: a chart with persistence switched off mounts
// an emptyDir named like its data, which spares it a claim.
func TestEphemeralDataIsWarnedOf(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	sts := workloads.StatefulSet("cache", policy.StatefulSingle, 1)
	sts.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	got := tn.admitted(func(dryRun bool) error { return tn.create(sts.DeepCopy(), dryRun) })
	assert.Equal(t, []string{`statefulset "cache" is stateful-single, but its data lives in emptyDir volumes only ("data" at /data), which die with the pod: ` +
		`give it persistent volumes (enable the chart's persistence, or a volume claim template of that name), ` +
		`or drop those emptyDir volumes from the pod template so that statekeeper injects a claim for each mount ` +
		`(when the statefulset is created: claim templates cannot be added later) [ephemeral-data]`}, got)
}

// TestQuorumWithExternalVotes: two data members and an arbiter elsewhere
// are three votes; the count holds on /scale too.
func TestQuorumWithExternalVotes(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	mongo := workloads.StatefulSet("mongo", policy.StatefulMulti, 2)
	mongo.Annotations = map[string]string{policy.AnnotationQuorum: "true", policy.AnnotationQuorumExternalVotes: "1"}
	assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(mongo.DeepCopy(), dryRun) }))
	tn.get(mongo)
	requireDenial(t, tn.denied(func(dryRun bool) error { return tn.scale(mongo, 3, dryRun) }),
		denial{validateScaling, scaleKind, "mongo", replicasPath,
			`statefulset "mongo" requires an odd number of votes (statekeeper.io/quorum: "true") so that a quorum cannot split, ` +
				`got 3 replicas + 1 external vote (statekeeper.io/quorum-external-votes) = 4 votes: use 2 or 4 replicas [quorum]`})
	assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.scale(mongo, 4, dryRun) }))
}
