package integration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

func TestKindSwitch(t *testing.T) {
	t.Parallel()
	withComponent := func(o client.Object, component string) client.Object {
		o.GetLabels()[policy.LabelComponent] = component
		return o
	}
	componentPath := field.NewPath("metadata", "labels").Key(policy.LabelComponent)
	namePath := field.NewPath("metadata", "name")
	tests := []struct {
		name     string
		existing client.Object
		created  client.Object
		// wantDenial is the denial while existing runs; wantWarning the
		// warning once it is scaled to 0.
		wantDenial  denial
		wantWarning string
	}{
		{
			name:     "unlabelled Deployment with a claim, then a stateful-single StatefulSet",
			existing: withClaimVolume(workloads.Deployment("db", "", 1), "db-data"),
			created:  workloads.StatefulSet("db", policy.StatefulSingle, 1),
			wantDenial: denial{validateWorkloads, statefulSetKind, "db", namePath,
				kindSwitchMessage(`deployment "db"`, "db", `statefulset "db"`)},
			wantWarning: `deployment "db" (component "db") is scaled to 0 but keeps its data in claims "db-data"; ` +
				`statefulset "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
		{
			name:     "stateless-single Deployment with a claim, then a stateful-single StatefulSet",
			existing: withClaimVolume(workloads.Deployment("db", policy.StatelessSingle, 1), "db-data"),
			created:  workloads.StatefulSet("db", policy.StatefulSingle, 1),
			wantDenial: denial{validateWorkloads, statefulSetKind, "db", namePath,
				kindSwitchMessage(`deployment "db"`, "db", `statefulset "db"`)},
			wantWarning: `deployment "db" (component "db") is scaled to 0 but keeps its data in claims "db-data"; ` +
				`statefulset "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
		{
			name:     "stateful-single StatefulSet with claim templates, then a stateless-single Deployment",
			existing: workloads.StatefulSet("db", policy.StatefulSingle, 1),
			created:  workloads.Deployment("db", policy.StatelessSingle, 1),
			wantDenial: denial{validateWorkloads, deploymentKind, "db", namePath,
				kindSwitchMessage(`statefulset "db"`, "db", `deployment "db"`)},
			wantWarning: `statefulset "db" (component "db") is scaled to 0 but keeps its data in claims "data-db-*"; ` +
				`deployment "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
		// docs/spec.md §1: unlabelled workloads are not managed, but the kind-switch
		// rule guards a managed workload's data from them too, through the
		// webhook entry for unlabelled workload CREATEs.
		{
			name:     "stateless-single Deployment with a claim, then an unlabelled StatefulSet",
			existing: withClaimVolume(workloads.Deployment("db", policy.StatelessSingle, 1), "db-data"),
			created:  unlabelledStatefulSet("db"),
			wantDenial: denial{validateUnlabelled, statefulSetKind, "db", namePath,
				kindSwitchMessage(`deployment "db"`, "db", `statefulset "db"`)},
			wantWarning: `deployment "db" (component "db") is scaled to 0 but keeps its data in claims "db-data"; ` +
				`statefulset "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
		{
			name:     "stateful-single StatefulSet with claim templates, then an unlabelled Deployment",
			existing: workloads.StatefulSet("db", policy.StatefulSingle, 1),
			created:  workloads.Deployment("db", "", 1),
			wantDenial: denial{validateUnlabelled, deploymentKind, "db", namePath,
				kindSwitchMessage(`statefulset "db"`, "db", `deployment "db"`)},
			wantWarning: `statefulset "db" (component "db") is scaled to 0 but keeps its data in claims "data-db-*"; ` +
				`deployment "db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
		{
			name:     "the component label links workloads of different names",
			existing: withComponent(withClaimVolume(workloads.Deployment("db-v1", policy.StatelessSingle, 1), "db-data"), "db"),
			created:  withComponent(workloads.StatefulSet("db-v2", policy.StatefulSingle, 1), "db"),
			wantDenial: denial{validateWorkloads, statefulSetKind, "db-v2", componentPath,
				kindSwitchMessage(`deployment "db-v1"`, "db", `statefulset "db-v2"`)},
			wantWarning: `deployment "db-v1" (component "db") is scaled to 0 but keeps its data in claims "db-data"; ` +
				`statefulset "db-v2" mounts storage differently and will not reuse them: back up the data first [kind-switch]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			tn.mustCreate(tt.existing)
			create := func(dryRun bool) error {
				return tn.create(tt.created.DeepCopyObject().(client.Object), dryRun)
			}

			requireDenial(t, tn.denied(create), tt.wantDenial)
			tn.assertNotStored(tt.created)

			// kubectl scale --replicas=0; envtest runs no controller, so the
			// status already says 0 replicas: the workload is closed.
			tn.admitted(func(dryRun bool) error { return tn.scale(tt.existing, 0, dryRun) })
			tn.settle(create, func(err error) bool { return err == nil })

			// Pods still reported by the status keep it running.
			tn.setStatusReplicas(tt.existing, 1)
			requireDenial(t, tn.denied(create), tt.wantDenial)
			tn.assertNotStored(tt.created)

			tn.setStatusReplicas(tt.existing, 0)
			assert.Equal(t, []string{tt.wantWarning}, tn.admitted(create))
		})
	}
}

func TestTypeChange(t *testing.T) {
	t.Parallel()
	const runningMessage = `statefulset "db" is running with persistent volumes: its deploy type cannot change from stateful-single to %s; scale it to 0 and back up its data first [type-change]`
	tests := []struct {
		name           string
		specReplicas   int32
		statusReplicas int32
		// newType is the new label value; empty removes the label (from the
		// StatefulSet and its pod template).
		newType     policy.DeployType
		wantMessage string // empty: admitted
	}{
		{
			name:         "relabelling a running StatefulSet",
			specReplicas: 1, newType: policy.StatefulMulti,
			wantMessage: fmt.Sprintf(runningMessage, "stateful-multi"),
		},
		{
			name:         "removing the label of a running StatefulSet",
			specReplicas: 1,
			wantMessage:  fmt.Sprintf(runningMessage, "unmanaged (statekeeper.io/deploy-type label removed)"),
		},
		{
			name:         "relabelling a StatefulSet scaled to 0 whose status still counts a pod",
			specReplicas: 0, statusReplicas: 1, newType: policy.StatefulMulti,
			wantMessage: fmt.Sprintf(runningMessage, "stateful-multi"),
		},
		{
			name:         "relabelling a StatefulSet scaled to 0",
			specReplicas: 0, newType: policy.StatefulMulti,
		},
		{
			name:         "removing the label of a StatefulSet scaled to 0",
			specReplicas: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			sts := workloads.StatefulSet("db", policy.StatefulSingle, tt.specReplicas)
			tn.mustCreate(sts)
			require.NotEmpty(t, sts.Spec.VolumeClaimTemplates, "the StatefulSet must have persistent volumes")
			if tt.statusReplicas > 0 {
				tn.setStatusReplicas(sts, tt.statusReplicas)
			}

			tn.get(sts)
			before := sts.ResourceVersion
			if tt.newType == "" {
				// The type counts on the pod template too, where the
				// mutation stamped it: removing it means removing both.
				delete(sts.Labels, policy.LabelDeployType)
				delete(sts.Spec.Template.Labels, policy.LabelDeployType)
			} else {
				sts.Labels[policy.LabelDeployType] = string(tt.newType)
			}
			relabel := func(dryRun bool) error { return tn.update(sts.DeepCopy(), dryRun) }

			if tt.wantMessage != "" {
				requireDenial(t, tn.denied(relabel), denial{validateWorkloads, statefulSetKind, "db", deployTypePath, tt.wantMessage})
				tn.get(sts)
				assert.Equal(t, before, sts.ResourceVersion, "the denied update must not be stored")
				return
			}
			assert.Empty(t, tn.admitted(relabel))
			tn.get(sts)
			assert.Equal(t, string(tt.newType), sts.Labels[policy.LabelDeployType])
		})
	}
}

// TestHeadlessConflict: a foreign ClusterIP Service named by spec.serviceName
// (a single-instance or gossip chart's own) is warned of, not denied; only
// inject-env, whose DNS names would never resolve, is denied.
func TestHeadlessConflict(t *testing.T) {
	t.Parallel()
	injectEnv := func(s *appsv1.StatefulSet) *appsv1.StatefulSet {
		s.Annotations = map[string]string{policy.AnnotationInjectEnv: "true"}
		return s
	}
	tests := []struct {
		name        string
		service     *corev1.Service
		statefulSet *appsv1.StatefulSet
		// warning and denial are the message with the Service's clusterIP
		// (%[1]s) and name (%[2]s) left to fill in.
		warning, denial string
	}{
		{
			name:        "a foreign ClusterIP Service named <name>-headless: warned",
			service:     service("db-headless", ""),
			statefulSet: workloads.StatefulSet("db", policy.StatefulSingle, 1),
			warning: `service %[2]q named by spec.serviceName of statefulset "db" is not headless (spec.clusterIP is %[1]q) and is not managed by statekeeper, ` +
				`so its pods get no per-pod DNS names (such as db-0.%[2]s.%[3]s.svc) and statekeeper stamps no fqdn, primary-fqdn or peers on them; ` +
				`statekeeper creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), ` +
				`or set spec.serviceName to an unused name and statekeeper creates a headless one [headless-conflict]`,
		},
		{
			name:    "a foreign ClusterIP Service named by spec.serviceName, with inject-env: denied",
			service: service("db-peers", ""),
			statefulSet: func() *appsv1.StatefulSet {
				s := injectEnv(workloads.StatefulSet("db", policy.StatefulMulti, 3))
				s.Spec.ServiceName = "db-peers"
				return s
			}(),
			denial: `statefulset "db" asks for its pods' identity as environment variables (statekeeper.io/inject-env: "true"), ` +
				`but service %[2]q named by its spec.serviceName is not headless (spec.clusterIP is %[1]q) and is not managed by statekeeper, ` +
				`so its pods get no per-pod DNS names: STATEKEEPER_FQDN, STATEKEEPER_PRIMARY_FQDN and STATEKEEPER_PEERS would name addresses that never resolve, ` +
				`and an application that finds its peers through them would start alone; make service %[2]q headless (clusterIP: None), ` +
				`or set spec.serviceName to an unused name and statekeeper creates a headless one, or remove statekeeper.io/inject-env [headless-conflict]`,
		},
		{
			name:        "a foreign headless Service is used as it is",
			service:     service("db-headless", corev1.ClusterIPNone),
			statefulSet: injectEnv(workloads.StatefulSet("db", policy.StatefulSingle, 1)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			svc := tt.service.DeepCopy()
			tn.mustCreate(svc) // svc now holds the clusterIP the API server allocated
			create := func(dryRun bool) error { return tn.create(tt.statefulSet.DeepCopy(), dryRun) }
			if tt.denial != "" {
				message := fmt.Sprintf(tt.denial, svc.Spec.ClusterIP, svc.Name)
				requireDenial(t, tn.denied(create), denial{validateWorkloads, statefulSetKind, "db",
					field.NewPath("metadata", "annotations").Key(policy.AnnotationInjectEnv), message})
				tn.assertNotStored(tt.statefulSet)
				return
			}
			if tt.warning != "" {
				assert.Equal(t, []string{fmt.Sprintf(tt.warning, svc.Spec.ClusterIP, svc.Name, svc.Namespace)},
					tn.warned(create, policy.RuleHeadlessConflict))
				return
			}
			assert.Empty(t, tn.admitted(create))
		})
	}
}

// service is a Service not managed by statekeeper; an empty clusterIP lets
// the API server allocate one.
func service(name, clusterIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Selector:  map[string]string{"app": "db"},
			Ports:     []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// unlabelledStatefulSet is a StatefulSet without the deploy-type label that
// declares its own claim template and Service, as one written without
// statekeeper must.
func unlabelledStatefulSet(name string) *appsv1.StatefulSet {
	sts := workloads.StatefulSet(name, "", 1)
	sts.Spec.ServiceName = name
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*workloads.Claim("data", corev1.ReadWriteOnce)}
	return sts
}

// TestUnlabelledWorkloadBesideAnUnmanagedOneIsAdmitted: the guard for
// unlabelled workloads protects managed workloads only; two unmanaged ones
// are not statekeeper's business.
func TestUnlabelledWorkloadBesideAnUnmanagedOneIsAdmitted(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	tn.mustCreate(withClaimVolume(workloads.Deployment("db", "", 1), "db-data"))
	require.NoError(t, tn.create(unlabelledStatefulSet("db"), false))
	assert.Empty(t, tn.warnings.take())
}
