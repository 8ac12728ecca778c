package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
)

func TestValidateDelete(t *testing.T) {
	db := func(replicas int32, edits ...func(*appsv1.StatefulSet)) Workload {
		edits = append(edits, stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")),
			func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To(replicas) })
		return FromStatefulSet(stsFixture("db", "stateful-single", edits...))
	}
	protected := stsAnnotations(AnnotationProtect, "true")
	at := pathAnnotations.Key(AnnotationProtect)
	tests := []struct {
		name               string
		object             Observed
		namespaceProtected bool
		want               Result
	}{
		{"protected and running: denied", Observed{Workload: db(1, protected)}, false,
			denied(RuleDeletionProtection, at, msgDeletionProtected(Observed{Workload: db(1, protected)}, "the statefulset"))},
		{"its namespace protects it: denied", Observed{Workload: db(1)}, true,
			denied(RuleDeletionProtection, at, msgDeletionProtected(Observed{Workload: db(1)}, `namespace "shop"`))},
		{"scaled to 0 but pods remain: denied", Observed{Workload: db(0, protected), PodsExist: true}, false,
			denied(RuleDeletionProtection, at, msgDeletionProtected(Observed{Workload: db(0, protected)}, "the statefulset"))},
		{"scaled to 0, pods gone: allowed", Observed{Workload: db(0, protected)}, false, Result{}},
		{"not protected: allowed", Observed{Workload: db(1)}, false, Result{}},
		{"protect false: allowed", Observed{Workload: db(1, stsAnnotations(AnnotationProtect, "false"))}, false, Result{}},
		{"no persistent volumes: allowed",
			Observed{Workload: FromStatefulSet(stsFixture("db", "stateful-single", protected))}, false, Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ValidateDelete(tt.object, tt.namespaceProtected))
		})
	}
	assert.Equal(t, `statefulset "db" is protected from deletion (statekeeper.io/protect: "true" on the statefulset) and is running with persistent volumes: `+
		`scale it to 0 first (kubectl scale statefulset db --replicas=0), wait for its pods to stop, then delete it`,
		msgDeletionProtected(Observed{Workload: db(1, protected)}, "the statefulset"))
}
