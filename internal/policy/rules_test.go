package policy

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// Fixtures shared by the rule and mutation tests.

// stsFixture is a StatefulSet in namespace "shop" with one replica, a
// selector and a one-container pod template, labelled with deployType (""
// leaves it unlabelled); edits adjust it.
func stsFixture(name, deployType string, edits ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: fixtureMeta(name, deployType),
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: fixturePodTemplate(name),
		},
	}
	for _, edit := range edits {
		edit(s)
	}
	return s
}

// deployFixture is stsFixture's Deployment twin.
func deployFixture(name, deployType string, edits ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: fixtureMeta(name, deployType),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: fixturePodTemplate(name),
		},
	}
	for _, edit := range edits {
		edit(d)
	}
	return d
}

func fixtureMeta(name, deployType string) metav1.ObjectMeta {
	meta := metav1.ObjectMeta{Name: name, Namespace: "shop"}
	if deployType != "" {
		meta.Labels = map[string]string{LabelDeployType: deployType}
	}
	return meta
}

func fixturePodTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example/" + name}}},
	}
}

func volumeMounts(names ...string) []corev1.VolumeMount {
	out := make([]corev1.VolumeMount, len(names))
	for i, n := range names {
		out[i] = corev1.VolumeMount{Name: n, MountPath: "/" + n}
	}
	return out
}

func claimVolume(name, claim string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
	}}
}

func claimTemplate(name, size string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			},
		},
	}
}

func existingClaim(name string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: modes},
	}
}

// Edits.

func stsReplicas(n *int32) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) { s.Spec.Replicas = n }
}

func stsMounts(names ...string) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].VolumeMounts = volumeMounts(names...) }
}

func stsTemplates(templates ...corev1.PersistentVolumeClaim) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates = templates }
}

func stsVolumes(volumes ...corev1.Volume) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Volumes = volumes }
}

func stsAnnotations(kv ...string) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) { s.Annotations = pairs(kv...) }
}

func deployReplicas(n *int32) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Replicas = n }
}

func deployMounts(names ...string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].VolumeMounts = volumeMounts(names...) }
}

func deployVolumes(volumes ...corev1.Volume) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Volumes = volumes }
}

func deployAnnotations(kv ...string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Annotations = pairs(kv...) }
}

func pairs(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// running views a stored workload with statusReplicas and whether pods exist.
func running(w Workload, statusReplicas int32, podsExist bool) Observed {
	w.StatusReplicas = statusReplicas
	return Observed{Workload: w, PodsExist: podsExist}
}

func observedPtr(o Observed) *Observed { return &o }

func violation(rule Rule, at *field.Path, msg string) Violation {
	return Violation{Rule: rule, Field: at, Message: msg}
}

var (
	atReplicas    = field.NewPath("spec", "replicas")
	atDeployType  = field.NewPath("metadata", "labels").Key(LabelDeployType)
	atServiceName = field.NewPath("spec", "serviceName")
)

func atAnnotation(key string) *field.Path { return field.NewPath("metadata", "annotations").Key(key) }

func atClaimName(volume int) *field.Path {
	return field.NewPath("spec", "template", "spec", "volumes").Index(volume).Child("persistentVolumeClaim", "claimName")
}

func TestValidateWorkloadSingleInstance(t *testing.T) {
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "stateful-single with 3 replicas is denied",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(ptr.To[int32](3))))},
			want: Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas, `statefulset "db" is stateful-single: replicas must be 0 or 1, got 3`)}},
		},
		{
			name: "nil replicas means 1",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(nil)))},
		},
		{
			name: "0 replicas is allowed",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(ptr.To[int32](0))))},
		},
		{
			name: "stateless-single scaled to 2 in an update is denied",
			req: WorkloadRequest{
				Operation: OpUpdate,
				Object:    FromDeployment(deployFixture("web", "stateless-single", deployReplicas(ptr.To[int32](2)))),
				Old:       observedPtr(running(FromDeployment(deployFixture("web", "stateless-single")), 1, true)),
			},
			want: Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas, `deployment "web" is stateless-single: replicas must be 0 or 1, got 2`)}},
		},
		{
			name: "stateful-multi takes any count",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "stateful-multi", stsReplicas(ptr.To[int32](5))))},
		},
		{
			name: "stateless-multi takes any count",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromDeployment(deployFixture("web", "stateless-multi", deployReplicas(ptr.To[int32](5))))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

// chartWideLabelsWayOut ends the kind-mismatch denial of a stateful type on a Deployment.
const chartWideLabelsWayOut = `if a chart's common labels put it there, label only the chart's StatefulSet ` +
	`(a Helm post-renderer, see the README's 'Opting in charts you do not write') or remove the label from this deployment and its pod template`

func TestValidateWorkloadKindMismatch(t *testing.T) {
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "stateful type on a deployment",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromDeployment(deployFixture("db", "stateful-single"))},
			want: Result{Denials: []Violation{violation(RuleKindMismatch, atDeployType,
				`deployment "db" is labelled stateful-single, which runs as a StatefulSet: use stateless-single or stateless-multi, or create a statefulset; `+
					chartWideLabelsWayOut)}},
		},
		{
			name: "stateless type on a statefulset, in an update",
			req: WorkloadRequest{
				Operation: OpUpdate,
				Object:    FromStatefulSet(stsFixture("db", "stateless-multi")),
				Old:       observedPtr(running(FromStatefulSet(stsFixture("db", "stateless-multi")), 1, true)),
			},
			want: Result{Denials: []Violation{violation(RuleKindMismatch, atDeployType,
				`statefulset "db" is labelled stateless-multi, which runs as a Deployment: use stateful-single or stateful-multi, or create a deployment`)}},
		},
		{
			name: "unknown type lists the valid ones",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromDeployment(deployFixture("db", "database"))},
			want: Result{Denials: []Violation{violation(RuleKindMismatch, atDeployType,
				`deployment "db" has an invalid statekeeper.io/deploy-type label: unknown deploy type "database": must be one of "stateful-single", "stateful-multi", "stateless-single", "stateless-multi"`)}},
		},
		{
			name: "empty type is unknown",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "", func(s *appsv1.StatefulSet) {
				s.Labels = map[string]string{LabelDeployType: ""}
			}))},
			want: Result{Denials: []Violation{violation(RuleKindMismatch, atDeployType,
				`statefulset "db" has an invalid statekeeper.io/deploy-type label: unknown deploy type "": must be one of "stateful-single", "stateful-multi", "stateless-single", "stateless-multi"`)}},
		},
		{
			name: "a mismatched single type still limits replicas",
			req:  WorkloadRequest{Operation: OpCreate, Object: FromDeployment(deployFixture("db", "stateful-single", deployReplicas(ptr.To[int32](3))))},
			want: Result{Denials: []Violation{
				violation(RuleSingleInstance, atReplicas, `deployment "db" is stateful-single: replicas must be 0 or 1, got 3`),
				violation(RuleKindMismatch, atDeployType,
					`deployment "db" is labelled stateful-single, which runs as a StatefulSet: use stateless-single or stateless-multi, or create a statefulset; `+
						chartWideLabelsWayOut),
			}},
		},
		{
			name: "a mismatched stateful-multi deployment gets no shared-claim warning",
			req: WorkloadRequest{Operation: OpCreate, Object: FromDeployment(deployFixture("db", "stateful-multi",
				deployVolumes(claimVolume("data", "db-data")), deployMounts("data")))},
			want: Result{Denials: []Violation{violation(RuleKindMismatch, atDeployType,
				`deployment "db" is labelled stateful-multi, which runs as a StatefulSet: use stateless-single or stateless-multi, or create a statefulset; `+
					chartWideLabelsWayOut)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateWorkloadQuorum(t *testing.T) {
	quorumSts := func(deployType string, replicas *int32, quorum string, annotations ...string) Workload {
		return FromStatefulSet(stsFixture("etcd", deployType, stsReplicas(replicas), stsAnnotations(append([]string{AnnotationQuorum, quorum}, annotations...)...)))
	}
	tests := []struct {
		name string
		w    Workload
		want Result
	}{
		{
			name: "4 replicas are denied",
			w:    quorumSts("stateful-multi", ptr.To[int32](4), "true"),
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 4: use 3 or 5; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`)}},
		},
		{
			name: "2 replicas are denied",
			w:    quorumSts("stateful-multi", ptr.To[int32](2), "true"),
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`)}},
		},
		{name: "3 replicas are allowed", w: quorumSts("stateful-multi", ptr.To[int32](3), "true")},
		{name: "0 replicas are allowed", w: quorumSts("stateful-multi", ptr.To[int32](0), "true")},
		{name: "nil replicas mean 1", w: quorumSts("stateful-multi", nil, "true")},
		{name: "quorum false allows even counts", w: quorumSts("stateful-multi", ptr.To[int32](4), "false")},
		{
			name: "on a deployment too",
			w: FromDeployment(deployFixture("web", "stateless-multi", deployReplicas(ptr.To[int32](6)),
				deployAnnotations(AnnotationQuorum, "true"))),
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`deployment "web" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 6: use 5 or 7; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`)}},
		},
		{
			name: "an arbiter elsewhere makes 2 data members 3 votes",
			w:    quorumSts("stateful-multi", ptr.To[int32](2), "true", AnnotationQuorumExternalVotes, "1"),
		},
		{
			name: "3 data members and an arbiter are 4 votes",
			w:    quorumSts("stateful-multi", ptr.To[int32](3), "true", AnnotationQuorumExternalVotes, "1"),
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "etcd" requires an odd number of votes (statekeeper.io/quorum: "true") so that a quorum cannot split, `+
					`got 3 replicas + 1 external vote (statekeeper.io/quorum-external-votes) = 4 votes: use 2 or 4 replicas`)}},
		},
		{
			name: "1 replica and 3 external votes",
			w:    quorumSts("stateful-multi", nil, "true", AnnotationQuorumExternalVotes, "3"),
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "etcd" requires an odd number of votes (statekeeper.io/quorum: "true") so that a quorum cannot split, `+
					`got 1 replica + 3 external votes (statekeeper.io/quorum-external-votes) = 4 votes: use 0 or 2 replicas`)}},
		},
		{
			name: "0 replicas stay allowed whatever the external votes",
			w:    quorumSts("stateful-multi", ptr.To[int32](0), "true", AnnotationQuorumExternalVotes, "1"),
		},
		{
			name: "0 external votes count as none",
			w:    quorumSts("stateful-multi", ptr.To[int32](3), "true", AnnotationQuorumExternalVotes, "0"),
		},
		{
			name: "external votes without quorum: no count is wanted",
			w:    quorumSts("stateful-multi", ptr.To[int32](3), "false", AnnotationQuorumExternalVotes, "1"),
		},
		{
			name: "unusable external votes are an invalid annotation, and count as none",
			w:    quorumSts("stateful-multi", ptr.To[int32](2), "true", AnnotationQuorumExternalVotes, "-1"),
			want: Result{Denials: []Violation{
				violation(RuleQuorum, atReplicas,
					`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3; `+
						`if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`),
				violation(RuleInvalidAnnotation, field.NewPath("metadata", "annotations").Key(AnnotationQuorumExternalVotes),
					`statefulset "etcd": annotation statekeeper.io/quorum-external-votes must be a non-negative integer, the number of voters of its quorum outside this workload ("1" for an arbiter in another workload), got "-1"`),
			}},
		},
		{
			name: "an external vote count past int32 is unusable",
			w:    quorumSts("stateful-multi", ptr.To[int32](3), "true", AnnotationQuorumExternalVotes, "2147483648"),
			want: Result{Denials: []Violation{
				violation(RuleInvalidAnnotation, field.NewPath("metadata", "annotations").Key(AnnotationQuorumExternalVotes),
					`statefulset "etcd": annotation statekeeper.io/quorum-external-votes must be a non-negative integer, the number of voters of its quorum outside this workload ("1" for an arbiter in another workload), got "2147483648"`),
			}},
		},
		{
			name: "single-instance and quorum both report on 2 replicas",
			w:    quorumSts("stateful-single", ptr.To[int32](2), "true"),
			want: Result{Denials: []Violation{
				violation(RuleSingleInstance, atReplicas, `statefulset "etcd" is stateful-single: replicas must be 0 or 1, got 2`),
				violation(RuleQuorum, atReplicas,
					`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: tt.w}))
		})
	}
}

func TestValidateWorkloadTypeChange(t *testing.T) {
	withData := func(deployType string, edits ...func(*appsv1.StatefulSet)) Workload {
		edits = append([]func(*appsv1.StatefulSet){stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi"))}, edits...)
		return FromStatefulSet(stsFixture("db", deployType, edits...))
	}
	scaledDown := stsReplicas(ptr.To[int32](0))
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "changing the type of a running workload with volumes is denied",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-multi"), Old: observedPtr(running(withData("stateful-single"), 1, true))},
			want: Result{Denials: []Violation{violation(RuleTypeChange, atDeployType,
				`statefulset "db" is running with persistent volumes: its deploy type cannot change from stateful-single to stateful-multi; scale it to 0 and back up its data first`)}},
		},
		{
			name: "removing the label is a change",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData(""), Old: observedPtr(running(withData("stateful-single"), 1, true))},
			want: Result{Denials: []Violation{violation(RuleTypeChange, atDeployType,
				`statefulset "db" is running with persistent volumes: its deploy type cannot change from stateful-single to unmanaged (statekeeper.io/deploy-type label removed); scale it to 0 and back up its data first`)}},
		},
		{
			name: "adding the label to an unmanaged workload is not a change",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-single"), Old: observedPtr(running(withData(""), 1, true))},
		},
		{
			name: "keeping the type is not a change",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-single"), Old: observedPtr(running(withData("stateful-single"), 1, true))},
		},
		{
			name: "a workload scaled to 0 with no pods may change",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-multi", scaledDown), Old: observedPtr(running(withData("stateful-single", scaledDown), 0, false))},
		},
		{
			name: "pods that still exist count as running",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-multi", scaledDown), Old: observedPtr(running(withData("stateful-single", scaledDown), 0, true))},
			want: Result{Denials: []Violation{violation(RuleTypeChange, atDeployType,
				`statefulset "db" is running with persistent volumes: its deploy type cannot change from stateful-single to stateful-multi; scale it to 0 and back up its data first`)}},
		},
		{
			name: "status replicas count as running",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("stateful-multi", scaledDown), Old: observedPtr(running(withData("stateful-single", scaledDown), 1, false))},
			want: Result{Denials: []Violation{violation(RuleTypeChange, atDeployType,
				`statefulset "db" is running with persistent volumes: its deploy type cannot change from stateful-single to stateful-multi; scale it to 0 and back up its data first`)}},
		},
		{
			name: "a running workload without volumes may change",
			req: WorkloadRequest{
				Operation: OpUpdate,
				Object:    FromDeployment(deployFixture("web", "stateless-multi")),
				Old:       observedPtr(running(FromDeployment(deployFixture("web", "stateless-single")), 1, true)),
			},
		},
		{
			name: "a claim volume counts as a persistent volume",
			req: WorkloadRequest{
				Operation: OpUpdate,
				Object:    FromDeployment(deployFixture("web", "stateless-multi", deployVolumes(claimVolume("data", "web-data")))),
				Old:       observedPtr(running(FromDeployment(deployFixture("web", "stateless-single", deployVolumes(claimVolume("data", "web-data")))), 1, true)),
			},
			want: Result{Denials: []Violation{violation(RuleTypeChange, atDeployType,
				`deployment "web" is running with persistent volumes: its deploy type cannot change from stateless-single to stateless-multi; scale it to 0 and back up its data first`)}},
		},
		{
			name: "an unlabelled update of an unlabelled workload is not judged",
			req:  WorkloadRequest{Operation: OpUpdate, Object: withData("", stsReplicas(ptr.To[int32](3))), Old: observedPtr(running(withData(""), 1, true))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateWorkloadKindSwitch(t *testing.T) {
	newSts := FromStatefulSet(stsFixture("db", "stateful-single", stsMounts("data")))
	deployWithClaims := func(replicas int32) Workload {
		return FromDeployment(deployFixture("db", "stateless-single", deployReplicas(ptr.To(replicas)),
			deployVolumes(claimVolume("data", "db-data"), claimVolume("logs", "db-logs"), corev1.Volume{Name: "tmp"})))
	}
	stsWithTemplates := func(replicas int32) Workload {
		return FromStatefulSet(stsFixture("db", "stateful-multi", stsReplicas(ptr.To(replicas)),
			stsTemplates(claimTemplate("data", "1Gi"), claimTemplate("logs", "1Gi"))))
	}
	atName := field.NewPath("metadata", "name")
	runningDeny := violation(RuleKindSwitch, atName,
		`deployment "db" (component "db") is running with persistent volumes; scale it to 0 and back up its data before creating statefulset "db"`)
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "the other kind running with claims is denied",
			req:  WorkloadRequest{Operation: OpCreate, Object: newSts, Counterparts: []Observed{running(deployWithClaims(1), 1, true)}},
			want: Result{Denials: []Violation{runningDeny}},
		},
		{
			name: "status replicas alone mean running",
			req:  WorkloadRequest{Operation: OpCreate, Object: newSts, Counterparts: []Observed{running(deployWithClaims(0), 1, false)}},
			want: Result{Denials: []Violation{runningDeny}},
		},
		{
			name: "pods alone mean running",
			req:  WorkloadRequest{Operation: OpCreate, Object: newSts, Counterparts: []Observed{running(deployWithClaims(0), 0, true)}},
			want: Result{Denials: []Violation{runningDeny}},
		},
		{
			name: "a closed deployment warns, naming its claims",
			req:  WorkloadRequest{Operation: OpCreate, Object: newSts, Counterparts: []Observed{running(deployWithClaims(0), 0, false)}},
			want: Result{Warnings: []Violation{violation(RuleKindSwitch, atName,
				`deployment "db" (component "db") is scaled to 0 but keeps its data in claims "db-data", "db-logs"; statefulset "db" mounts storage differently and will not reuse them: back up the data first`)}},
		},
		{
			name: "a closed statefulset warns with its per-ordinal claims",
			req: WorkloadRequest{
				Operation:    OpCreate,
				Object:       FromDeployment(deployFixture("db", "stateless-single")),
				Counterparts: []Observed{running(stsWithTemplates(0), 0, false)},
			},
			want: Result{Warnings: []Violation{violation(RuleKindSwitch, atName,
				`statefulset "db" (component "db") is scaled to 0 but keeps its data in claims "data-db-*", "logs-db-*"; deployment "db" mounts storage differently and will not reuse them: back up the data first`)}},
		},
		{
			name: "a running statefulset with claim templates is denied",
			req: WorkloadRequest{
				Operation:    OpCreate,
				Object:       FromDeployment(deployFixture("db", "stateless-single")),
				Counterparts: []Observed{running(stsWithTemplates(2), 2, true)},
			},
			want: Result{Denials: []Violation{violation(RuleKindSwitch, atName,
				`statefulset "db" (component "db") is running with persistent volumes; scale it to 0 and back up its data before creating deployment "db"`)}},
		},
		{
			name: "a running counterpart without persistent volumes is fine",
			req: WorkloadRequest{
				Operation:    OpCreate,
				Object:       newSts,
				Counterparts: []Observed{running(FromDeployment(deployFixture("db", "stateless-single")), 1, true)},
			},
		},
		{
			name: "the component label ties differently named workloads",
			req: WorkloadRequest{
				Operation: OpCreate,
				Object: FromStatefulSet(stsFixture("db-v2", "stateful-single", func(s *appsv1.StatefulSet) {
					s.Labels[LabelComponent] = "orders-db"
				})),
				Counterparts: []Observed{running(FromDeployment(deployFixture("db", "stateless-single", func(d *appsv1.Deployment) {
					d.Labels[LabelComponent] = "orders-db"
					d.Spec.Template.Spec.Volumes = []corev1.Volume{claimVolume("data", "db-data")}
				})), 1, true)},
			},
			want: Result{Denials: []Violation{violation(RuleKindSwitch, field.NewPath("metadata", "labels").Key(LabelComponent),
				`deployment "db" (component "orders-db") is running with persistent volumes; scale it to 0 and back up its data before creating statefulset "db-v2"`)}},
		},
		{
			name: "counterparts are not judged on update",
			req: WorkloadRequest{
				Operation:    OpUpdate,
				Object:       newSts,
				Old:          observedPtr(running(newSts, 1, true)),
				Counterparts: []Observed{running(deployWithClaims(1), 1, true)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateWorkloadHeadlessConflict(t *testing.T) {
	service := func(clusterIP string, labels map[string]string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: labels},
			Spec:       corev1.ServiceSpec{ClusterIP: clusterIP},
		}
	}
	db := func(deployType string, annotations ...string) Workload {
		return FromStatefulSet(stsFixture("db", deployType, stsAnnotations(annotations...), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db" }))
	}
	injectEnv := []string{AnnotationInjectEnv, "true"}
	atInjectEnv := field.NewPath("metadata", "annotations").Key(AnnotationInjectEnv)
	warning := violation(RuleHeadlessConflict, atServiceName,
		`service "db" named by spec.serviceName of statefulset "db" is not headless (spec.clusterIP is "10.96.0.10") and is not managed by statekeeper, `+
			`so its pods get no per-pod DNS names (such as db-0.db.shop.svc) and statekeeper stamps no fqdn, primary-fqdn or peers on them; `+
			`statekeeper creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), `+
			`or set spec.serviceName to an unused name and statekeeper creates a headless one`)
	refusal := func(wayOut string) Violation {
		return violation(RuleHeadlessConflict, atInjectEnv,
			`statefulset "db" asks for its pods' identity as environment variables (statekeeper.io/inject-env: "true"), `+
				`but service "db" named by its spec.serviceName is not headless (spec.clusterIP is "10.96.0.10") and is not managed by statekeeper, `+
				`so its pods get no per-pod DNS names: STATEKEEPER_FQDN, STATEKEEPER_PRIMARY_FQDN and STATEKEEPER_PEERS would name addresses that never resolve, `+
				`and an application that finds its peers through them would start alone; `+wayOut)
	}
	refusedOnCreate := refusal(`make service "db" headless (clusterIP: None), or set spec.serviceName to an unused name and statekeeper creates a headless one, or remove statekeeper.io/inject-env`)
	refusedOnUpdate := refusal(`make service "db" headless (clusterIP: None), or remove statekeeper.io/inject-env (spec.serviceName cannot change on an existing statefulset)`)
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "a foreign service with a cluster IP (a single-instance chart's) is warned of",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-single"), Service: service("10.96.0.10", nil)},
			want: Result{Warnings: []Violation{warning}},
		},
		{
			name: "with inject-env it is denied: the variables would name addresses that never resolve",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-multi", injectEnv...), Service: service("10.96.0.10", nil)},
			want: Result{Denials: []Violation{refusedOnCreate}},
		},
		{
			name: "inject-env false is no request",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-multi", AnnotationInjectEnv, "false"), Service: service("10.96.0.10", nil)},
			want: Result{Warnings: []Violation{warning}},
		},
		{
			name: "a foreign headless service is fine",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-multi", injectEnv...), Service: service("None", map[string]string{"app": "db"})},
		},
		{
			name: "a managed service is the reconciler's to repair",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-single", injectEnv...), Service: service("10.96.0.10", map[string]string{LabelManagedBy: ManagerName})},
		},
		{
			name: "no service yet is fine",
			req:  WorkloadRequest{Operation: OpCreate, Object: db("stateful-single", injectEnv...)},
		},
		{
			name: "an update is not warned again",
			req:  WorkloadRequest{Operation: OpUpdate, Object: db("stateful-single"), Old: observedPtr(running(db("stateful-single"), 1, true)), Service: service("10.96.0.10", nil)},
		},
		{
			name: "an update that turns inject-env on is denied",
			req: WorkloadRequest{Operation: OpUpdate, Object: db("stateful-single", injectEnv...),
				Old: observedPtr(running(db("stateful-single"), 1, true)), Service: service("10.96.0.10", nil)},
			want: Result{Denials: []Violation{refusedOnUpdate}},
		},
		{
			name: "an update that keeps inject-env on is not judged again",
			req: WorkloadRequest{Operation: OpUpdate, Object: db("stateful-single", injectEnv...),
				Old: observedPtr(running(db("stateful-single", injectEnv...), 1, true)), Service: service("10.96.0.10", nil)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateWorkloadSharedClaim(t *testing.T) {
	web := func(deployType string, replicas *int32) Workload {
		return FromDeployment(deployFixture("web", deployType, deployReplicas(replicas),
			deployVolumes(corev1.Volume{Name: "cache"}, claimVolume("files", "web-files")), deployMounts("cache", "files")))
	}
	claims := func(c *corev1.PersistentVolumeClaim) map[string]*corev1.PersistentVolumeClaim {
		return map[string]*corev1.PersistentVolumeClaim{c.Name: c}
	}
	rwoWarning := violation(RuleSharedClaim, atClaimName(1),
		`deployment "web" runs 3 replicas but mounts ReadWriteOnce claim "web-files" (volume "files"), which instances on other nodes cannot attach: use a ReadWriteMany claim, or run it as a stateful-multi StatefulSet for one volume per instance`)
	boundRWX := existingClaim("web-files", corev1.ReadWriteOnce)
	boundRWX.Status.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "stateful-multi mounting a plain claim shares it",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("redis", "stateful-multi",
				stsVolumes(claimVolume("shared", "redis-shared")), stsMounts("shared", "data")))},
			want: Result{Warnings: []Violation{violation(RuleSharedClaim, atClaimName(0),
				`statefulset "redis" is stateful-multi but mounts claim "redis-shared" (volume "shared"), which all its instances share: use a volume claim template for one volume per instance`)}},
		},
		{
			name: "a claim mounted only by an init container counts",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("redis", "stateful-multi",
				stsVolumes(corev1.Volume{Name: "tmp"}, claimVolume("seed", "redis-seed")), func(s *appsv1.StatefulSet) {
					s.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", VolumeMounts: volumeMounts("seed")}}
				}))},
			want: Result{Warnings: []Violation{violation(RuleSharedClaim, atClaimName(1),
				`statefulset "redis" is stateful-multi but mounts claim "redis-seed" (volume "seed"), which all its instances share: use a volume claim template for one volume per instance`)}},
		},
		{
			name: "an unmounted claim volume is not set up by the kubelet",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("redis", "stateful-multi",
				stsVolumes(claimVolume("shared", "redis-shared"))))},
		},
		{
			name: "stateful-single has one instance to share with",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("redis", "stateful-single",
				stsVolumes(claimVolume("shared", "redis-shared")), stsMounts("shared")))},
		},
		{
			name: "stateless-multi with 3 replicas on a ReadWriteOnce claim",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", ptr.To[int32](3)), Claims: claims(existingClaim("web-files", corev1.ReadWriteOnce))},
			want: Result{Warnings: []Violation{rwoWarning}},
		},
		{
			name: "stateless-multi with 2 replicas on a ReadWriteOncePod claim, in an update",
			req: WorkloadRequest{
				Operation: OpUpdate,
				Object:    web("stateless-multi", ptr.To[int32](2)),
				Old:       observedPtr(running(web("stateless-multi", ptr.To[int32](1)), 1, true)),
				Claims:    claims(existingClaim("web-files", corev1.ReadWriteOncePod)),
			},
			want: Result{Warnings: []Violation{violation(RuleSharedClaim, atClaimName(1),
				`deployment "web" runs 2 replicas but mounts ReadWriteOncePod claim "web-files" (volume "files"), which instances on other nodes cannot attach: use a ReadWriteMany claim, or run it as a stateful-multi StatefulSet for one volume per instance`)}},
		},
		{
			name: "a ReadWriteMany claim can be shared",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", ptr.To[int32](3)), Claims: claims(existingClaim("web-files", corev1.ReadWriteMany, corev1.ReadWriteOnce))},
		},
		{
			name: "the bound volume's modes win over the requested ones",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", ptr.To[int32](3)), Claims: claims(boundRWX)},
		},
		{
			name: "a claim that was not found is not known to be ReadWriteOnce",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", ptr.To[int32](3))},
		},
		{
			name: "one replica shares with nobody",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", ptr.To[int32](1)), Claims: claims(existingClaim("web-files", corev1.ReadWriteOnce))},
		},
		{
			name: "nil replicas mean one",
			req:  WorkloadRequest{Operation: OpCreate, Object: web("stateless-multi", nil), Claims: claims(existingClaim("web-files", corev1.ReadWriteOnce))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateWorkloadInvalidAnnotation(t *testing.T) {
	annotated := func(kv ...string) Workload {
		return FromStatefulSet(stsFixture("db", "stateful-single", stsAnnotations(kv...)))
	}
	tests := []struct {
		name string
		w    Workload
		want Result
	}{
		{name: "valid values", w: annotated(AnnotationStorageSize, "10Gi", AnnotationStorageClass, "fast-ssd", AnnotationQuorum, "false", AnnotationInjectEnv, "true")},
		{name: "an empty storage class means the cluster default", w: annotated(AnnotationStorageClass, "")},
		{
			name: "storage size that is not a quantity",
			w:    annotated(AnnotationStorageSize, "lots"),
			want: Result{Denials: []Violation{violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageSize),
				`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got "lots"`)}},
		},
		{
			name: "storage size zero",
			w:    annotated(AnnotationStorageSize, "0"),
			want: Result{Denials: []Violation{violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageSize),
				`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got "0"`)}},
		},
		{
			name: "negative storage size",
			w:    annotated(AnnotationStorageSize, "-1Gi"),
			want: Result{Denials: []Violation{violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageSize),
				`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got "-1Gi"`)}},
		},
		{
			name: "every bad annotation is reported, in a fixed order",
			w:    annotated(AnnotationInjectEnv, "1", AnnotationQuorum, "yes", AnnotationStorageClass, "Fast_SSD", AnnotationStorageSize, ""),
			want: Result{Denials: []Violation{
				violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageSize),
					`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got ""`),
				violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageClass),
					`statefulset "db": annotation statekeeper.io/storage-class must name a storage class (lowercase letters, digits, '-' and '.', at most 253 characters) or be empty for the cluster default, got "Fast_SSD"`),
				violation(RuleInvalidAnnotation, atAnnotation(AnnotationQuorum),
					`statefulset "db": annotation statekeeper.io/quorum must be "true" or "false", got "yes"`),
				violation(RuleInvalidAnnotation, atAnnotation(AnnotationInjectEnv),
					`statefulset "db": annotation statekeeper.io/inject-env must be "true" or "false", got "1"`),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: tt.w}))
		})
	}
}

func TestValidateWorkloadUnmanagedAndCrafted(t *testing.T) {
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "an unlabelled workload is not judged",
			req: WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(stsFixture("db", "", stsReplicas(ptr.To[int32](4)),
				stsAnnotations(AnnotationQuorum, "true", AnnotationStorageSize, "lots")))},
		},
		{name: "the zero request", req: WorkloadRequest{}},
		{
			name: "nil template and selector",
			req: WorkloadRequest{Operation: OpCreate, Object: Workload{
				Kind: KindStatefulSet, Name: "db", Labels: map[string]string{LabelDeployType: "stateful-multi"},
			}, Service: &corev1.Service{}},
			want: Result{Warnings: []Violation{violation(RuleHeadlessConflict, atServiceName,
				`service "" named by spec.serviceName of statefulset "db" is not headless (spec.clusterIP is not None) and is not managed by statekeeper, `+
					`so its pods get no per-pod DNS names (such as db-0...svc) and statekeeper stamps no fqdn, primary-fqdn or peers on them; `+
					`statekeeper creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), `+
					`or set spec.serviceName to an unused name and statekeeper creates a headless one`)}},
		},
		{
			name: "an update without the old object",
			req:  WorkloadRequest{Operation: OpUpdate, Object: Workload{Kind: KindDeployment, Labels: map[string]string{LabelDeployType: "stateless-single"}}},
		},
		{
			name: "an unknown operation runs the object rules only",
			req:  WorkloadRequest{Operation: "DELETE", Object: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(ptr.To[int32](2))))},
			want: Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas, `statefulset "db" is stateful-single: replicas must be 0 or 1, got 2`)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateScale(t *testing.T) {
	tests := []struct {
		name     string
		parent   Workload
		replicas int32
		want     Result
	}{
		{
			name:     "scaling a single-instance statefulset past one",
			parent:   FromStatefulSet(stsFixture("db", "stateful-single")),
			replicas: 3,
			want:     Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas, `statefulset "db" is stateful-single: replicas must be 0 or 1, got 3`)}},
		},
		{
			name:     "scaling a single-instance deployment past one",
			parent:   FromDeployment(deployFixture("web", "stateless-single")),
			replicas: 2,
			want:     Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas, `deployment "web" is stateless-single: replicas must be 0 or 1, got 2`)}},
		},
		{name: "scaling a single instance to 0", parent: FromStatefulSet(stsFixture("db", "stateful-single")), replicas: 0},
		{name: "scaling a single instance to 1", parent: FromStatefulSet(stsFixture("db", "stateful-single", stsReplicas(ptr.To[int32](0)))), replicas: 1},
		{
			name:     "an even count on a quorum workload",
			parent:   FromStatefulSet(stsFixture("etcd", "stateful-multi", stsAnnotations(AnnotationQuorum, "true"))),
			replicas: 4,
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 4: use 3 or 5; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`)}},
		},
		{
			name:     "an arbiter elsewhere: an even count is an odd number of votes",
			parent:   FromStatefulSet(stsFixture("mongo", "stateful-multi", stsAnnotations(AnnotationQuorum, "true", AnnotationQuorumExternalVotes, "1"))),
			replicas: 4,
		},
		{
			name:     "an arbiter elsewhere: an odd count is an even number of votes",
			parent:   FromStatefulSet(stsFixture("mongo", "stateful-multi", stsAnnotations(AnnotationQuorum, "true", AnnotationQuorumExternalVotes, "1"))),
			replicas: 3,
			want: Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
				`statefulset "mongo" requires an odd number of votes (statekeeper.io/quorum: "true") so that a quorum cannot split, `+
					`got 3 replicas + 1 external vote (statekeeper.io/quorum-external-votes) = 4 votes: use 2 or 4 replicas`)}},
		},
		{name: "an odd count on a quorum workload", parent: FromStatefulSet(stsFixture("etcd", "stateful-multi", stsAnnotations(AnnotationQuorum, "true"))), replicas: 5},
		{name: "a multi-instance workload", parent: FromDeployment(deployFixture("web", "stateless-multi")), replicas: 10},
		{name: "an unmanaged parent", parent: FromStatefulSet(stsFixture("db", "")), replicas: 10},
		{name: "an unknown type cannot be judged", parent: FromStatefulSet(stsFixture("db", "database")), replicas: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateScale(t, tt.parent, tt.replicas))
		})
	}
}

func TestValidateHPA(t *testing.T) {
	tests := []struct {
		name        string
		target      Workload
		maxReplicas int32
		want        Result
	}{
		{
			name:        "maxReplicas past one on a single-instance target",
			target:      FromStatefulSet(stsFixture("db", "stateful-single")),
			maxReplicas: 3,
			want: Result{Denials: []Violation{violation(RuleSingleInstance, field.NewPath("spec", "maxReplicas"),
				`horizontalpodautoscaler "db-hpa" targets statefulset "db", which is stateful-single: maxReplicas must be 1, got 3`)}},
		},
		{name: "maxReplicas 1 on a single-instance target", target: FromDeployment(deployFixture("web", "stateless-single")), maxReplicas: 1},
		{name: "a multi-instance target", target: FromDeployment(deployFixture("web", "stateless-multi")), maxReplicas: 10},
		{name: "an unmanaged target", target: FromDeployment(deployFixture("web", "")), maxReplicas: 10},
		{name: "an unknown type", target: FromDeployment(deployFixture("web", "database")), maxReplicas: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateHPA(t, "db-hpa", tt.target, tt.maxReplicas))
		})
	}
}

// The chart's scaling webhook has a match condition that keeps a Scale to at
// most one replica and an HPA with maxReplicas at most one from reaching
// statekeeper at all (so that an outage never blocks them). That is right
// only while no rule says anything about them, for any parent: every deploy
// type (valid, unknown, none), both kinds, quorum on, off or malformed.
func TestNothingAtMostOneReplicaIsJudged(t *testing.T) {
	var parents []Workload
	for _, deployType := range []string{"stateful-single", "stateful-multi", "stateless-single", "stateless-multi", "database", ""} {
		for _, quorum := range []string{"true", "false", "yes", ""} {
			parents = append(parents,
				FromStatefulSet(stsFixture("db", deployType, stsAnnotations(AnnotationQuorum, quorum))),
				FromDeployment(deployFixture("db", deployType, deployAnnotations(AnnotationQuorum, quorum))))
		}
	}
	for _, parent := range parents {
		for _, replicas := range []int32{math.MinInt32, -1, 0, 1} {
			assert.Equal(t, Result{}, ValidateScale(parent, replicas), "scale of %s (%v) to %d", parent.Ref(), parent.Labels, replicas)
			assert.Equal(t, Result{}, ValidateHPA("hpa", parent, replicas), "hpa of %s (%v) with maxReplicas %d", parent.Ref(), parent.Labels, replicas)
		}
	}
}

// FuzzValidateWorkload decodes an arbitrary workload and another one (the
// stored object when of the same kind, else a counterpart) and checks that no
// rule panics, that every violation is well formed, and that the workload's
// cached copy (stored.go) is judged as the whole object.
func FuzzValidateWorkload(f *testing.F) {
	for _, seed := range mutateSeeds(f) {
		f.Add(seed[0], seed[1], int32(3), true)
	}
	f.Add([]byte(`{"kind":"StatefulSet","metadata":{"name":"db","labels":{"statekeeper.io/deploy-type":"stateful-multi"},"annotations":{"statekeeper.io/quorum":"true"}},"spec":{"replicas":4}}`),
		[]byte(`{"kind":"Deployment","metadata":{"name":"db"},"spec":{"replicas":0,"template":{"spec":{"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"x"}}]}}}}`),
		int32(2), false)
	f.Fuzz(func(t *testing.T, object, other []byte, replicas int32, podsExist bool) {
		_, w, err := decodeWorkload(object)
		if err != nil {
			return
		}
		assert.Equal(t, judgeStored(w), judgeStored(stored(w)), "the cached copy is judged otherwise")
		var results []Result
		if _, otherW, err := decodeWorkload(other); err == nil {
			observed := Observed{Workload: otherW, PodsExist: podsExist}
			if otherW.Kind == w.Kind {
				results = append(results, ValidateWorkload(WorkloadRequest{Operation: OpUpdate, Object: w, Old: &observed}))
			} else {
				results = append(results, ValidateWorkload(WorkloadRequest{Operation: OpCreate, Object: w, Counterparts: []Observed{observed}}))
			}
		}
		create := ValidateWorkload(WorkloadRequest{Operation: OpCreate, Object: w, Service: &corev1.Service{}})
		if !w.Managed() {
			assert.Equal(t, Result{}, create, "unmanaged workloads are not judged")
		}
		results = append(results, create, ValidateScale(w, replicas), ValidateHPA("hpa", w, replicas))
		for _, r := range results {
			for _, v := range append(r.Denials, r.Warnings...) {
				assert.NotEmpty(t, v.Rule)
				assert.NotNil(t, v.Field)
				assert.NotEmpty(t, v.Message)
				assert.NotContains(t, v.Message, "["+string(v.Rule)+"]", "the rule suffix is String's job")
			}
		}
	})
}

func TestValidateWorkloadRecreateStrategy(t *testing.T) {
	withClaim := func(edits ...func(*appsv1.Deployment)) Workload {
		edits = append([]func(*appsv1.Deployment){deployVolumes(claimVolume("data", "web-data")), deployMounts("data")}, edits...)
		return FromDeployment(deployFixture("web", "stateless-single", edits...))
	}
	strategy := func(maxSurge intstr.IntOrString) func(*appsv1.Deployment) {
		return func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: ptr.To(intstr.FromInt32(1))}}
		}
	}
	recreate := func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	rwo := map[string]*corev1.PersistentVolumeClaim{"web-data": existingClaim("web-data", corev1.ReadWriteOnce)}
	rwx := map[string]*corev1.PersistentVolumeClaim{"web-data": existingClaim("web-data", corev1.ReadWriteMany)}
	surging := withClaim(strategy(intstr.FromInt32(1)))
	tests := []struct {
		name   string
		object Workload
		claims map[string]*corev1.PersistentVolumeClaim
		want   Result
	}{
		{"a surging RollingUpdate on a ReadWriteOnce claim: warned", surging, rwo,
			warned(RuleRecreateStrategy, pathStrategy, msgRollingUpdateWithClaim(surging))},
		{"maxSurge 0 stops the old pod first", withClaim(strategy(intstr.FromInt32(0))), rwo, Result{}},
		{"Recreate", withClaim(recreate), rwo, Result{}},
		{"a ReadWriteMany claim can roll", surging, rwx, Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: tt.object, Claims: tt.claims}))
		})
	}
}
