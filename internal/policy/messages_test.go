package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"
)

// The denials quoted in docs/spec.md §4 are part of the contract: users and scripts
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

func TestNamespaceMode(t *testing.T) {
	tests := []struct {
		name         string
		label        string
		labelled     bool
		want         Mode
		wantWarnings []string
	}{
		{name: "no label: the default", want: ModeWarn},
		{name: "an empty label is invalid", labelled: true, want: ModeEnforce, wantWarnings: []string{
			`namespace "shop" has an invalid statekeeper.io/mode label (unknown mode "": must be one of "enforce", "warn", "audit", "off"); ` +
				`statekeeper enforces its rules there until it is fixed [invalid-mode]`,
		}},
		{name: "off", label: "off", labelled: true, want: ModeOff},
		{name: "an invalid label enforces and says so", label: "strict", labelled: true, want: ModeEnforce, wantWarnings: []string{
			`namespace "shop" has an invalid statekeeper.io/mode label (unknown mode "strict": must be one of "enforce", "warn", "audit", "off"); ` +
				`statekeeper enforces its rules there until it is fixed [invalid-mode]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, warnings := NamespaceMode("shop", tt.label, tt.labelled, ModeWarn)
			assert.Equal(t, tt.want, mode)
			var got []string
			for _, w := range warnings {
				assert.Nil(t, w.Field)
				got = append(got, w.String())
			}
			assert.Equal(t, tt.wantWarnings, got)
		})
	}
}
