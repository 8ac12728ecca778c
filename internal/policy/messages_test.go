package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"
)

// The denials quoted in SPEC §4 are part of the contract: users and scripts
// read them.
func TestSpecQuotedDenials(t *testing.T) {
	single := ValidateWorkload(WorkloadRequest{Operation: OpCreate,
		Object: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(ptr.To[int32](3))))})
	switchDenied := ValidateWorkload(WorkloadRequest{Operation: OpCreate,
		Object: FromStatefulSet(stsFixture("db", "stateful-single")),
		Counterparts: []Observed{running(FromDeployment(deployFixture("db", "stateless-single",
			deployVolumes(claimVolume("data", "db-data")))), 1, true)},
	})

	var got []string
	for _, v := range append(single.Denials, switchDenied.Denials...) {
		got = append(got, v.String())
	}
	assert.Equal(t, []string{
		`statefulset "db" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`,
		`deployment "db" (component "db") is running with persistent volumes; scale it to 0 and back up its data before creating statefulset "db" [kind-switch]`,
	}, got)
}

func TestOrList(t *testing.T) {
	assert.Equal(t, "", orList(nil))
	assert.Equal(t, "stateful-single", orList([]DeployType{StatefulSingle}))
	assert.Equal(t, "stateful-single or stateful-multi", orList(typesOfKind(KindStatefulSet)))
	assert.Equal(t, "stateful-single, stateful-multi, stateless-single or stateless-multi", orList(DeployTypes))
}
