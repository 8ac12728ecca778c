package integration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

func TestWarnNamespaceAdmitsWithTheDenialAsWarning(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, policy.ModeWarn)

	sts := workloads.StatefulSet("db", policy.StatefulSingle, 3)
	require.NoError(t, tn.create(sts, false))
	assert.Equal(t, []string{singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 3)}, tn.warnings.take())
	// Mutations apply in warn mode as in enforce mode.
	tn.get(sts)
	assert.Equal(t, "db-headless", sts.Spec.ServiceName)
	assert.Equal(t, []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}, sts.Spec.VolumeClaimTemplates)

	warnings := tn.warned(func(dryRun bool) error { return tn.scale(sts, 5, dryRun) }, policy.RuleSingleInstance)
	assert.Equal(t, []string{singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 5)}, warnings)
	assert.Equal(t, int32(5), tn.specReplicas(sts))
}

func TestOffNamespaceIsNotTouched(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, policy.ModeOff)

	// No volume mount: without statekeeper's claim template the API server
	// would reject an unmatched mount.
	sent := workloads.StatefulSet("db", policy.StatefulSingle, 3)
	sent.Spec.Template.Spec.Containers[0].VolumeMounts = nil
	sts := sent.DeepCopy()
	require.NoError(t, tn.create(sts, false))
	assert.Empty(t, tn.warnings.take())
	tn.get(sts)
	assert.Empty(t, sts.Spec.ServiceName)
	assert.Empty(t, sts.Spec.VolumeClaimTemplates)
	assert.Equal(t, sent.Spec.Template.Labels, sts.Spec.Template.Labels)

	require.NoError(t, tn.scale(sts, 5, false))
	assert.Empty(t, tn.warnings.take())
	assert.Equal(t, int32(5), tn.specReplicas(sts))

	require.NoError(t, tn.create(workloads.Deployment("web", policy.StatelessSingle, 2), false))
	assert.Empty(t, tn.warnings.take())
}

func TestUnlabelledWorkloadsAreUntouched(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")

	sent := workloads.StatefulSet("plain", "", 3)
	sent.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	sts := sent.DeepCopy()
	require.NoError(t, tn.create(sts, false))
	tn.get(sts)
	assert.Empty(t, sts.Spec.ServiceName)
	assert.Empty(t, sts.Spec.VolumeClaimTemplates)
	assert.Equal(t, sent.Spec.Template.Labels, sts.Spec.Template.Labels)
	assert.Equal(t, sent.Labels, sts.Labels)

	// A single-replica Deployment mounting a ReadWriteOnce claim would get
	// Recreate if it were stateless-single; unlabelled it keeps its strategy.
	tn.mustCreate(workloads.Claim("plain-data", corev1.ReadWriteOnce))
	tn.awaitClaimInCache("plain-data")
	dep := withClaimVolume(workloads.Deployment("plain", "", 1), "plain-data")
	require.NoError(t, tn.create(dep, false))
	tn.get(dep)
	assert.Equal(t, defaultStrategy, dep.Spec.Strategy)
	assert.Equal(t, map[string]string{"app": "plain"}, dep.Spec.Template.Labels)

	require.NoError(t, tn.scale(sts, 5, false))
	assert.Equal(t, int32(5), tn.specReplicas(sts))
	assert.Empty(t, tn.warnings.take())
}

func TestServerSideDryRunReturnsTheMutatedObjectAndCreatesNothing(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")

	sts := workloads.StatefulSet("db", policy.StatefulSingle, 1)
	require.NoError(t, tn.create(sts, true))
	assert.Equal(t, "db-headless", sts.Spec.ServiceName)
	assert.Equal(t, []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}, sts.Spec.VolumeClaimTemplates)
	assert.Equal(t, withDeployTypeLabel(map[string]string{"app": "db"}, policy.StatefulSingle), sts.Spec.Template.Labels)
	tn.assertNotStored(sts)

	denied := workloads.StatefulSet("db", policy.StatefulSingle, 3)
	requireDenial(t, tn.create(denied, true), denial{validateWorkloads, statefulSetKind, "db", replicasPath,
		singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 3)})
	tn.assertNotStored(denied)
}

// TestWarnNamespaceWarnsOfAKindMismatchTheAPIServerRefuses: in warn mode
// statekeeper admits a StatefulSet of a stateless type, which gets no claim
// template, and the API server refuses its undeclared mount; the warning
// says why.
func TestWarnNamespaceWarnsOfAKindMismatchTheAPIServerRefuses(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, policy.ModeWarn)
	sts := workloads.StatefulSet("db", policy.StatelessMulti, 1)
	err := tn.create(sts, false)
	require.Error(t, err)
	assert.ErrorContains(t, err, `spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data"`)
	assert.Equal(t, []string{`statefulset "db" is labelled stateless-multi, which runs as a Deployment: ` +
		`use stateful-single or stateful-multi, or create a deployment [kind-mismatch]`}, tn.warnings.take())
	tn.assertNotStored(sts)
}

// TestOffNamespaceTurnedOnGetsItsServices: the reconciler reacts to a
// namespace's mode label, so a stateful StatefulSet created while its
// namespace was off gets its headless Service once the namespace is
// relabelled enforce, without waiting for a resync (hours away here).
func TestOffNamespaceTurnedOnGetsItsServices(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, policy.ModeOff)
	sts := workloads.StatefulSet("db", policy.StatefulSingle, 1)
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = nil
	sts.Spec.ServiceName = "db-headless"
	require.NoError(t, tn.create(sts, false))

	svc := &corev1.Service{}
	key := client.ObjectKey{Namespace: tn.ns, Name: "db-headless"}
	require.True(t, apierrors.IsNotFound(tn.c.Get(tn.ctx, key, svc)), "no Service in an off namespace")

	ns := &corev1.Namespace{}
	require.NoError(t, tn.c.Get(tn.ctx, client.ObjectKey{Name: tn.ns}, ns))
	ns.Labels[policy.LabelMode] = string(policy.ModeEnforce)
	require.NoError(t, tn.c.Update(tn.ctx, ns))

	require.Eventually(t, func() bool { return tn.c.Get(tn.ctx, key, svc) == nil }, settleTimeout, settlePoll,
		"the Service is created after the relabel")
	assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	assert.Equal(t, policy.ManagerName, svc.Labels[policy.LabelManagedBy])
}

// TestEveryRuleIsExercised: each rule of policy.Rules has a test here, but
// the day-two rules listed, which only the e2e suite tests so far
// (e2e/daytwo_test.go). The list must shrink: a new rule fails here until it
// has a test, and so does a listed rule that gets one.
func TestEveryRuleIsExercised(t *testing.T) {
	missing, err := workloads.RulesNotTested(".")
	require.NoError(t, err)
	// Written as strings: a constant here would count as a test.
	onlyInE2E := []policy.Rule{"deletion-protection"}
	assert.ElementsMatch(t, onlyInE2E, missing, "rules without an integration test")
}

// TestInvalidModeLabelEnforcesAndSaysSo: a mode statekeeper does not know
// enforces, and every reviewed write says why.
func TestInvalidModeLabelEnforcesAndSaysSo(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, policy.Mode("strict"))
	warnings := tn.admitted(func(dryRun bool) error {
		return tn.create(workloads.Deployment("web", policy.StatelessSingle, 1), dryRun)
	})
	assert.Equal(t, []string{fmt.Sprintf(`namespace %q has an invalid statekeeper.io/mode label (unknown mode "strict": `+
		`must be one of "enforce", "warn", "audit", "off"); statekeeper enforces its rules there until it is fixed [invalid-mode]`, tn.ns)}, warnings)
}

// TestInvalidAnnotationIsDenied: a statekeeper annotation whose value cannot
// be used is denied by the first webhook that sees it, with the whole verdict.
func TestInvalidAnnotationIsDenied(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	sts := workloads.StatefulSet("db", policy.StatefulSingle, 1)
	sts.Annotations = map[string]string{policy.AnnotationStorageSize: "lots"}
	requireDenial(t, tn.create(sts, false), denial{mutateWorkloads, statefulSetKind, "db",
		field.NewPath("metadata", "annotations").Key(policy.AnnotationStorageSize),
		`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got "lots" [invalid-annotation]`})
}
