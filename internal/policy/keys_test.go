package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateWorkloadUnknownKeys(t *testing.T) {
	// keyed is a managed stateful-multi "db" whose manifest writes keys.
	keyed := func(edit func(*appsv1.StatefulSet)) WorkloadRequest {
		s := stsFixture("db", "stateful-multi", edit)
		return WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(s), Written: WrittenKeysOf(&s.ObjectMeta, &s.Spec.Template)}
	}
	labels := field.NewPath("metadata", "labels")
	annotations := field.NewPath("metadata", "annotations")
	templateLabels := field.NewPath("spec", "template", "metadata", "labels")
	templateAnnotations := field.NewPath("spec", "template", "metadata", "annotations")
	const workloadKeys = `the labels statekeeper.io/deploy-type, statekeeper.io/component, ` +
		`the annotations statekeeper.io/storage-size, statekeeper.io/storage-class, statekeeper.io/quorum, statekeeper.io/quorum-external-votes, ` +
		`statekeeper.io/inject-env, statekeeper.io/protect, statekeeper.io/disruption-budget`
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "known keys where statekeeper reads them, on the workload or its template",
			req: keyed(func(s *appsv1.StatefulSet) {
				s.Labels[LabelComponent] = "db"
				s.Annotations = pairs(AnnotationStorageSize, "5Gi", AnnotationProtect, "true", "example.com/statekeeper.io-ish", "x")
				s.Spec.Template.Labels[LabelDeployType] = "stateful-multi"
				s.Spec.Template.Annotations = pairs(AnnotationQuorum, "false", "prometheus.io/scrape", "true")
			}),
		},
		{
			name: "a misspelt annotation: the nearest known key",
			req:  keyed(func(s *appsv1.StatefulSet) { s.Annotations = pairs("statekeeper.io/storage_size", "5Gi") }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, annotations.Key("statekeeper.io/storage_size"),
				`statefulset "db": statekeeper.io/storage_size (metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
					`did you mean statekeeper.io/storage-size, an annotation of the workload (metadata.annotations) or of its pod template?`)}},
		},
		{
			name: "case and transpositions count as one edit each",
			req: keyed(func(s *appsv1.StatefulSet) {
				s.Annotations = pairs("statekeeper.io/Inject-Env", "true", "statekeeper.io/qourum", "true")
			}),
			want: Result{Warnings: []Violation{
				violation(RuleUnknownKey, annotations.Key("statekeeper.io/Inject-Env"),
					`statefulset "db": statekeeper.io/Inject-Env (metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
						`did you mean statekeeper.io/inject-env, an annotation of the workload (metadata.annotations) or of its pod template?`),
				violation(RuleUnknownKey, annotations.Key("statekeeper.io/qourum"),
					`statefulset "db": statekeeper.io/qourum (metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
						`did you mean statekeeper.io/quorum, an annotation of the workload (metadata.annotations) or of its pod template?`),
			}},
		},
		{
			name: "a misspelt key whose nearest belongs elsewhere says where",
			req:  keyed(func(s *appsv1.StatefulSet) { s.Spec.Template.Labels["statekeeper.io/deploytype"] = "stateful-multi" }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, templateLabels.Key("statekeeper.io/deploytype"),
				`statefulset "db": statekeeper.io/deploytype (spec.template.metadata.labels) is not a key statekeeper knows, so nothing reads it: `+
					`did you mean statekeeper.io/deploy-type, a label of the workload (metadata.labels) or of its pod template?`)}},
		},
		{
			name: "nothing close: the keys statekeeper reads",
			req:  keyed(func(s *appsv1.StatefulSet) { s.Annotations = pairs("statekeeper.io/replicas", "3") }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, annotations.Key("statekeeper.io/replicas"),
				`statefulset "db": statekeeper.io/replicas (metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
					`remove it, or use a key statekeeper reads on a workload: `+workloadKeys)}},
		},
		{
			name: "a key statekeeper stamps itself is never suggested",
			req:  keyed(func(s *appsv1.StatefulSet) { s.Spec.Template.Annotations = pairs("statekeeper.io/peer", "db-0") }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, templateAnnotations.Key("statekeeper.io/peer"),
				`statefulset "db": statekeeper.io/peer (spec.template.metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
					`remove it, or use a key statekeeper reads on a workload: `+workloadKeys)}},
		},
		{
			name: "known keys in the wrong place say where they belong, places in order, keys by name",
			req: keyed(func(s *appsv1.StatefulSet) {
				s.Labels[AnnotationQuorum] = "true"
				s.Labels[LabelMode] = "warn"
				s.Labels[LabelProtect] = "true"
				s.Annotations = pairs(LabelDeployType, "stateful-multi")
				s.Spec.Template.Annotations = pairs(AnnotationFQDN, "db-0.db", AnnotationInjected, "true")
			}),
			want: Result{Warnings: []Violation{
				violation(RuleUnknownKey, labels.Key(LabelMode),
					`statefulset "db": statekeeper.io/mode is written as a label (metadata.labels), where statekeeper does not read it: `+
						`it is a label of its namespace; move it there`),
				violation(RuleUnknownKey, labels.Key(LabelProtect),
					`statefulset "db": statekeeper.io/protect is written as a label (metadata.labels), where statekeeper does not read it: `+
						`it is an annotation of the workload (metadata.annotations) or of its pod template or a label of its namespace; move it there`),
				violation(RuleUnknownKey, labels.Key(AnnotationQuorum),
					`statefulset "db": statekeeper.io/quorum is written as a label (metadata.labels), where statekeeper does not read it: `+
						`it is an annotation of the workload (metadata.annotations) or of its pod template; move it there`),
				violation(RuleUnknownKey, annotations.Key(LabelDeployType),
					`statefulset "db": statekeeper.io/deploy-type is written as an annotation (metadata.annotations), where statekeeper does not read it: `+
						`it is a label of the workload (metadata.labels) or of its pod template; move it there`),
				violation(RuleUnknownKey, templateAnnotations.Key(AnnotationFQDN),
					`statefulset "db": statekeeper.io/fqdn is written as an annotation (spec.template.metadata.annotations), where statekeeper does not read it: `+
						`it is an annotation statekeeper stamps on each pod itself; remove it`),
				violation(RuleUnknownKey, templateAnnotations.Key(AnnotationInjected),
					`statefulset "db": statekeeper.io/injected is written as an annotation (spec.template.metadata.annotations), where statekeeper does not read it: `+
						`it is an annotation statekeeper puts on the claim templates it injects itself; remove it`),
			}},
		},
		{
			name: "on an update too",
			req: func() WorkloadRequest {
				req := keyed(func(s *appsv1.StatefulSet) { s.Annotations = pairs("statekeeper.io/quorom", "true") })
				req.Operation, req.Old = OpUpdate, &Observed{Workload: req.Object}
				return req
			}(),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, annotations.Key("statekeeper.io/quorom"),
				`statefulset "db": statekeeper.io/quorom (metadata.annotations) is not a key statekeeper knows, so nothing reads it: `+
					`did you mean statekeeper.io/quorum, an annotation of the workload (metadata.annotations) or of its pod template?`)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, tt.req))
		})
	}
}

func TestValidateUnlabelledCreateKeys(t *testing.T) {
	unlabelled := func(edit func(*appsv1.StatefulSet)) WorkloadRequest {
		s := stsFixture("db", "", edit)
		return WorkloadRequest{Operation: OpCreate, Object: FromStatefulSet(s), Written: WrittenKeysOf(&s.ObjectMeta, &s.Spec.Template)}
	}
	tests := []struct {
		name string
		req  WorkloadRequest
		want Result
	}{
		{
			name: "a misspelt deploy type: not managed, and why",
			req:  unlabelled(func(s *appsv1.StatefulSet) { s.Labels = pairs("statekeeper.io/deploy_type", "stateful-single") }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, field.NewPath("metadata", "labels").Key("statekeeper.io/deploy_type"),
				`statefulset "db" is not managed by statekeeper: it has no statekeeper.io/deploy-type label, and statekeeper.io/deploy_type (metadata.labels) `+
					`is not a key statekeeper knows, so nothing reads it: did you mean statekeeper.io/deploy-type, a label of the workload (metadata.labels) or of its pod template?`)}},
		},
		{
			name: "the deploy type as an annotation: not managed, and where it belongs",
			req:  unlabelled(func(s *appsv1.StatefulSet) { s.Annotations = pairs(LabelDeployType, "stateful-single") }),
			want: Result{Warnings: []Violation{violation(RuleUnknownKey, field.NewPath("metadata", "annotations").Key(LabelDeployType),
				`statefulset "db" is not managed by statekeeper: it has no statekeeper.io/deploy-type label, and statekeeper.io/deploy-type is written as an annotation (metadata.annotations), `+
					`where statekeeper does not read it: it is a label of the workload (metadata.labels) or of its pod template; move it there`)}},
		},
		{
			name: "no statekeeper key: nothing to say",
			req:  unlabelled(func(s *appsv1.StatefulSet) { s.Labels = pairs("app", "db") }),
		},
		{
			name: "an update is not this webhook's",
			req: func() WorkloadRequest {
				req := unlabelled(func(s *appsv1.StatefulSet) { s.Labels = pairs("statekeeper.io/deploy_type", "stateful-single") })
				req.Operation = OpUpdate
				return req
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ValidateUnlabelledCreate(tt.req))
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"quorum", "quorum", 0}, {"deploy_type", "deploy-type", 1}, {"qourum", "quorum", 1},
		{"quorom", "quorum", 1}, {"peer", "peers", 1}, {"ca", "abc", 3}, {"", "mode", 4}, {"größe", "grösse", 2},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, editDistance(tt.a, tt.b), "%q → %q", tt.a, tt.b)
		assert.Equal(t, tt.want, editDistance(tt.b, tt.a), "%q → %q", tt.b, tt.a)
	}
}

func TestValidateWorkloadEphemeralData(t *testing.T) {
	emptyDir := func(name string, medium corev1.StorageMedium) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}}
	}
	configMap := corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}
	secret := corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}}
	db := func(deployType string, edits ...func(*appsv1.StatefulSet)) Workload {
		return FromStatefulSet(stsFixture("db", deployType, edits...))
	}
	// a second container mounts data twice (subPaths) and tmp once.
	sidecar := func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/init"}}}}
		s.Spec.Template.Spec.Containers = append(s.Spec.Template.Spec.Containers, corev1.Container{Name: "exporter",
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}}})
	}
	tests := []struct {
		name string
		w    Workload
		want Result
	}{
		{
			name: "persistence switched off: the data mounts are all emptyDir",
			w: db("stateful-single", stsMounts("data", "tmp", "config", "tls", "shm"),
				stsVolumes(configMap, emptyDir("data", ""), emptyDir("tmp", corev1.StorageMediumDefault), secret, emptyDir("shm", corev1.StorageMediumMemory)), sidecar),
			want: Result{Warnings: []Violation{violation(RuleEphemeralData, field.NewPath("spec", "template", "spec", "volumes").Index(1),
				`statefulset "db" is stateful-single, but its data lives in emptyDir volumes only ("data" at /init, /data; "tmp" at /tmp), which die with the pod: `+
					`give it persistent volumes (enable the chart's persistence, or a volume claim template of that name), `+
					`or drop those emptyDir volumes from the pod template so that statekeeper injects a claim for each mount `+
					`(when the statefulset is created: claim templates cannot be added later)`)}},
		},
		{
			name: "a claim template beside the emptyDir keeps the data",
			w:    db("stateful-multi", stsMounts("data", "tmp"), stsVolumes(emptyDir("tmp", "")), stsTemplates(claimTemplate("data", "1Gi"))),
		},
		{
			name: "a mount of no volume gets an injected claim",
			w:    db("stateful-multi", stsMounts("data", "tmp"), stsVolumes(emptyDir("tmp", ""))),
		},
		{
			name: "a claim volume keeps the data",
			w:    db("stateful-single", stsMounts("data", "tmp"), stsVolumes(emptyDir("tmp", ""), claimVolume("data", "db-data"))),
		},
		{
			name: "storage of the user's choice (a hostPath) is not second-guessed",
			w: db("stateful-single", stsMounts("data", "tmp"), stsVolumes(emptyDir("tmp", ""),
				corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}})),
		},
		{
			name: "configuration and memory only: no data to lose",
			w:    db("stateful-single", stsMounts("config", "shm"), stsVolumes(configMap, emptyDir("shm", corev1.StorageMediumMemory))),
		},
		{
			name: "no mounts at all",
			w:    db("stateful-single"),
		},
		{
			name: "a stateless deployment keeps scratch in emptyDir as it likes",
			w: FromDeployment(deployFixture("web", "stateless-single", deployMounts("data"),
				deployVolumes(emptyDir("data", "")))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: tt.w}))
		})
	}
}
