package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/randfill"
)

// The differential tests of stored.go: whatever reads a stored workload
// must decide the same on the trimmed copy the cache holds as on the whole
// object. The table tests of this package judge through the wrappers below
// (validateWorkload, validateScale, validateHPA), so each of their fixtures
// is judged both ways; TestStoredWorkloadsJudgedAlike fills every field of
// random workloads, so that a rule reading a trimmed field fails it however
// the table tests' fixtures look.

// stored is w as the cache holds it (the Workload view of TrimDeployment or
// TrimStatefulSet; the view carries nothing else they drop).
func stored(w Workload) Workload {
	if w.Template != nil {
		t := trimPodTemplate(*w.Template)
		w.Template = &t
	}
	w.ManagedFields = nil // the cache drops them from every object
	return w
}

func storedObserved(o Observed) Observed {
	o.Workload = stored(o.Workload)
	return o
}

// validateWorkload is ValidateWorkload, checked against the cached copies:
// the counterparts the lookups return, and the object audited as stored
// (the background audit judges a cached workload as an UPDATE of itself).
func validateWorkload(t *testing.T, req WorkloadRequest) Result {
	t.Helper()
	got := ValidateWorkload(req)
	cached := req
	cached.Counterparts = nil
	for _, c := range req.Counterparts {
		cached.Counterparts = append(cached.Counterparts, storedObserved(c))
	}
	assert.Equal(t, got, ValidateWorkload(cached), "the cached counterparts decide otherwise")
	assertAuditedAlike(t, req.Object, req.Claims, req.Service)
	if req.Old != nil {
		assertAuditedAlike(t, req.Old.Workload, req.Claims, req.Service)
	}
	return got
}

func assertAuditedAlike(t *testing.T, w Workload, claims map[string]*corev1.PersistentVolumeClaim, svc *corev1.Service) {
	t.Helper()
	audit := func(w Workload) Result {
		return ValidateWorkload(WorkloadRequest{Operation: OpUpdate, Object: w, Old: &Observed{Workload: w}, Claims: claims, Service: svc})
	}
	assert.Equal(t, audit(w), audit(stored(w)), "the audit of the cached copy finds otherwise")
}

// validateScale is ValidateScale, checked against the cached parent.
func validateScale(t *testing.T, parent Workload, replicas int32) Result {
	t.Helper()
	got := ValidateScale(parent, replicas)
	assert.Equal(t, got, ValidateScale(stored(parent), replicas), "the cached parent decides otherwise")
	return got
}

// validateHPA is ValidateHPA, checked against the cached target.
func validateHPA(t *testing.T, name string, target Workload, maxReplicas int32) Result {
	t.Helper()
	got := ValidateHPA(name, target, maxReplicas)
	assert.Equal(t, got, ValidateHPA(name, stored(target), maxReplicas), "the cached target decides otherwise")
	return got
}

func TestStoredKeepsWhatIsRead(t *testing.T) {
	sts := stsFixture("db", "stateful-multi", stsMounts("data"), stsVolumes(claimVolume("data", "db-data")))
	sts.Status = appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1, CurrentRevision: "db-1"}
	sts.Spec.Template.Annotations = map[string]string{"checksum": "abc"}
	c := &sts.Spec.Template.Spec.Containers[0]
	c.Image, c.Env = "postgres:17", []corev1.EnvVar{{Name: "PGDATA", Value: "/data"}}
	c.Ports = []corev1.ContainerPort{{Name: "pg", ContainerPort: 5432}}
	sts.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}

	trimmed := sts.DeepCopy()
	TrimStatefulSet(trimmed)
	assert.Equal(t, appsv1.StatefulSetStatus{Replicas: 2}, trimmed.Status)
	assert.Equal(t, sts.Spec.Template.Labels, trimmed.Spec.Template.Labels)
	assert.Nil(t, trimmed.Spec.Template.Annotations)
	assert.Equal(t, []corev1.Container{{Ports: c.Ports, VolumeMounts: c.VolumeMounts}}, trimmed.Spec.Template.Spec.Containers)
	assert.Equal(t, []corev1.Container{{RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}, trimmed.Spec.Template.Spec.InitContainers)
	assert.Equal(t, sts.Spec.Template.Spec.Volumes, trimmed.Spec.Template.Spec.Volumes)
	want := sts.DeepCopy()
	want.Spec.Template, want.Status = trimmed.Spec.Template, trimmed.Status
	assert.Equal(t, want, trimmed, "metadata and the spec but the template are kept whole")
}

// TestStoredWorkloadsJudgedAlike judges random workloads, every field
// filled, and their trimmed copies by everything that reads a stored
// workload: the rules (counterparts, Scale and HPA parents, the audit), pod
// stamping and the reconcilers' plans.
func TestStoredWorkloadsJudgedAlike(t *testing.T) {
	for seed := range int64(150) {
		sts, deploy := randomWorkloads(seed)
		trimmedSts, trimmedDeploy := sts.DeepCopy(), deploy.DeepCopy()
		TrimStatefulSet(trimmedSts)
		TrimDeployment(trimmedDeploy)
		require.NotEqual(t, sts.Spec.Template, trimmedSts.Spec.Template, "seed %d: nothing was trimmed", seed)

		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			judgeStoredStatefulSet := func(s *appsv1.StatefulSet) []any {
				w := FromStatefulSet(s)
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-1",
					Annotations: map[string]string{AnnotationOrdinal: "1"}}}
				budgets := []policyv1.PodDisruptionBudget{*DisruptionBudget(s), {
					ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: "other"},
					Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: s.Spec.Template.Labels}},
				}}
				classes := []storagev1.StorageClass{{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, AllowVolumeExpansion: ptr.To(true)}}
				claims := []corev1.PersistentVolumeClaim{*existingClaim("data-" + s.Name + "-0")}
				clusterIP := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
				stampOps, stampManaged, stampErr := StampStatefulPod(pod, s, nil, "cluster.local")
				stampNoDNS, _, _ := StampStatefulPod(pod, s, clusterIP, "cluster.local")
				identity, identityErr := PodIdentity(pod, s, "")
				peers, peersOK, peersErr := PeersUpdate(pod, s, nil, "")
				return append(judgeStored(w),
					[]any{stampOps, stampManaged, stampErr, stampNoDNS}, []any{identity, identityErr}, []any{peers, peersOK, peersErr},
					InjectEnvRequested(s), ServiceNameOf(s), HeadlessService(s), PlanHeadlessService(s, nil),
					PlanHeadlessService(s, HeadlessService(s)), AuditService(s, nil), AuditService(s, &corev1.Service{}), AuditService(s, clusterIP),
					WantsDisruptionBudget(s), DisruptionBudget(s), PlanDisruptionBudget(s, nil), PlanDisruptionBudget(s, budgets),
					BudgetConcerns(&budgets[1], s), PlanClaimGrowth(w, claims, classes), IsSizedClaimOf(claims[0].Name, w),
					WantedClaimSizes(w), MutateNewClaim(&claims[0], w, "data"))
			}
			stsBefore, deployBefore := trimmedSts.DeepCopy(), trimmedDeploy.DeepCopy()
			assert.Equal(t, judgeStoredStatefulSet(&sts), judgeStoredStatefulSet(trimmedSts), "statefulset, seed %d", seed)
			assert.Equal(t, judgeStored(FromDeployment(&deploy)), judgeStored(FromDeployment(trimmedDeploy)), "deployment, seed %d", seed)
			// The cache shares a stored workload's maps and slices with
			// other objects (internal/lookup's interner) and hands some
			// readers its own copy: nothing may write to it.
			assert.Equal(t, stsBefore, trimmedSts, "judging a stored statefulset wrote to it, seed %d", seed)
			assert.Equal(t, deployBefore, trimmedDeploy, "judging a stored deployment wrote to it, seed %d", seed)
		})
	}
}

// randomWorkloads are a StatefulSet and a Deployment with every field
// filled, shaped so that the rules have something to say about them.
func randomWorkloads(seed int64) (appsv1.StatefulSet, appsv1.Deployment) {
	f := randomFiller(seed)
	var sts appsv1.StatefulSet
	var deploy appsv1.Deployment
	f.Fill(&sts)
	f.Fill(&deploy)
	shapeStored(seed, &sts.ObjectMeta, &sts.Spec.Template, sts.Spec.VolumeClaimTemplates)
	shapeStored(seed, &deploy.ObjectMeta, &deploy.Spec.Template, nil)
	return sts, deploy
}

// judgeStored is every rule's say about w as a stored workload.
func judgeStored(w Workload) []any {
	var out []any
	newcomer := FromStatefulSet(stsFixture(w.Name, "stateful-single"))
	if w.Kind == KindStatefulSet {
		newcomer = FromDeployment(deployFixture(w.Name, "stateless-single"))
	}
	unlabelled := newcomer
	unlabelled.Labels = nil
	for _, podsExist := range []bool{false, true} {
		o := Observed{Workload: w, PodsExist: podsExist}
		out = append(out,
			ValidateWorkload(WorkloadRequest{Operation: OpUpdate, Object: w, Old: &o}),
			ValidateWorkload(WorkloadRequest{Operation: OpUpdate, Object: w, Old: &o, Service: &corev1.Service{}}),
			ValidateWorkload(WorkloadRequest{Operation: OpCreate, Object: newcomer, Counterparts: []Observed{o}}),
			ValidateUnlabelledCreate(WorkloadRequest{Operation: OpCreate, Object: unlabelled, Counterparts: []Observed{o}}),
		)
	}
	for _, replicas := range []int32{0, 1, 2, 3} {
		out = append(out, ValidateScale(w, replicas), ValidateHPA("hpa", w, replicas))
	}
	size, sized := RequestedStorageSize(w)
	return append(out, size, sized, InjectedClaimTemplates(w), Mutable(w), ValidateKind(w), w.Storage(), w.UnresolvedMounts())
}

// randomFiller fills every field, quantities with valid values.
func randomFiller(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.1).NumElements(1, 3).MaxDepth(14).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewQuantity(c.Int63n(1<<40), resource.BinarySI)
		},
		func(m *metav1.ObjectMeta, c randfill.Continue) {
			c.FillNoCustom(m)
			m.ManagedFields = nil // the cache drops them before the trim
		},
	)
}

// shapeStored makes a random workload one the rules have something to say
// about: a deploy type, statekeeper's annotations, and mounts that name its
// volumes and claim templates.
func shapeStored(seed int64, meta *metav1.ObjectMeta, tpl *corev1.PodTemplateSpec, claimTemplates []corev1.PersistentVolumeClaim) {
	types := append(DeployTypes, "", "database")
	meta.Labels = map[string]string{LabelDeployType: string(types[int(seed)%len(types)]), "app": meta.Name}
	meta.Annotations = map[string]string{
		AnnotationQuorum: fmt.Sprint(seed%3 == 0), AnnotationStorageSize: []string{"10Gi", "x", "1Gi"}[seed%3],
		AnnotationInjectEnv: fmt.Sprint(seed%2 == 0), AnnotationDisruptionBudget: fmt.Sprint(seed%4 != 0),
	}
	tpl.Labels = map[string]string{"app": meta.Name}
	spec := &tpl.Spec
	if seed%5 == 0 {
		spec.Volumes = nil
	}
	for i := range spec.Volumes {
		if i%2 == 0 {
			spec.Volumes[i].VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim-" + fmt.Sprint(i)}}
		}
	}
	var names []string
	for _, v := range spec.Volumes {
		names = append(names, v.Name)
	}
	for _, t := range claimTemplates {
		names = append(names, t.Name)
	}
	for i := range spec.InitContainers {
		if (int(seed)+i)%2 == 0 {
			spec.InitContainers[i].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways) // a sidecar
		}
	}
	for i := range spec.Containers {
		for j := range spec.Containers[i].VolumeMounts {
			if len(names) > 0 && (i+j)%3 != 2 {
				spec.Containers[i].VolumeMounts[j].Name = names[(i+j)%len(names)]
			}
		}
	}
}

// TestContainerFieldsAreWhatIsKept: the JSON names ContainerFields lists
// are the fields the cache's trim keeps.
func TestContainerFieldsAreWhatIsKept(t *testing.T) {
	for seed := range int64(20) {
		var c corev1.Container
		randomFiller(seed).NilChance(0).Fill(&c)
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways) // random strings may be empty
		KeepReadContainerFields(&c)
		js, err := json.Marshal(c)
		require.NoError(t, err)
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(js, &fields))
		for key, value := range fields {
			if string(value) == `""` || string(value) == "{}" {
				delete(fields, key) // a field without omitempty, written empty
			}
		}
		assert.ElementsMatch(t, ContainerFields, slices.Collect(maps.Keys(fields)), "seed %d", seed)
	}
}

// TestAdmittedWorkloadsJudgedAlike judges random workloads, every field
// filled, as admission requests, whole and with their pod templates'
// containers trimmed to what policy reads (KeepReadContainerFields):
// mutations and rules, as the new object and as the old.
func TestAdmittedWorkloadsJudgedAlike(t *testing.T) {
	trimmed := 0
	for seed := range int64(150) {
		sts, deploy := randomWorkloads(seed)
		as := func(w Workload) []any {
			var out []any
			defaults := Defaults{StorageSize: resource.MustParse("1Gi"), StorageClass: "standard"}
			for _, op := range []Operation{OpCreate, OpUpdate} {
				req := WorkloadRequest{Operation: op, Object: w}
				if op == OpUpdate {
					req.Old = &Observed{Workload: w, PodsExist: true}
				}
				out = append(out, MutateWorkload(req, defaults), ValidateWorkload(req), ValidateUnlabelledCreate(req))
			}
			return append(out, judgeStored(w))
		}
		admittedSts, admittedDeploy := sts.DeepCopy(), deploy.DeepCopy()
		KeepReadTemplateFields(&admittedSts.Spec.Template.Spec)
		KeepReadTemplateFields(&admittedDeploy.Spec.Template.Spec)
		if !equality.Semantic.DeepEqual(sts.Spec.Template, admittedSts.Spec.Template) {
			trimmed++
		}
		assert.Equal(t, as(FromStatefulSet(&sts)), as(FromStatefulSet(admittedSts)), "statefulset, seed %d", seed)
		assert.Equal(t, as(FromDeployment(&deploy)), as(FromDeployment(admittedDeploy)), "deployment, seed %d", seed)
	}
	assert.Greater(t, trimmed, 100, "random templates whose containers had unread fields")
}
