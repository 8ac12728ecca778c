package workloads

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Finding is what the audit must report about one object of AuditCases.
type Finding struct {
	Kind, Name string
	Rule       policy.Rule
	Result     string // "fail" or "warn"
}

// AuditCases are objects that break each rule the audit must find, as they
// can be stored without statekeeper (every StatefulSet names its Service and
// declares its claim templates; nothing relies on a mutation), together with
// the findings they must give. Replica counts are as small as the rules
// allow, so that few pods run. Create them in one namespace; the claims and
// Services come first.
func AuditCases() ([]client.Object, []Finding) {
	objects := []client.Object{
		Claim("shared-data", corev1.ReadWriteOnce),
		Claim("rwo-data", corev1.ReadWriteOnce),
		headless("single-db"),
		headless("shared"),
		clusterIPService("foreign-svc"),
	}
	var findings []Finding
	add := func(obj client.Object, found ...Finding) {
		objects = append(objects, obj)
		findings = append(findings, found...)
	}

	// A *-single workload above one replica.
	add(Deployment("single-web", policy.StatelessSingle, 2),
		Finding{"Deployment", "single-web", policy.RuleSingleInstance, "fail"})
	// An HPA that may scale a *-single target past one.
	add(StoredStatefulSet("single-db", policy.StatefulSingle))
	add(HPA("single-db", "StatefulSet", "single-db", 5),
		Finding{"HorizontalPodAutoscaler", "single-db", policy.RuleSingleInstance, "fail"})
	// A stateful StatefulSet without its headless Service, and one whose
	// Service is someone else's and not headless (warned: its pods get no
	// per-pod DNS names).
	add(StoredStatefulSet("no-service", policy.StatefulMulti),
		Finding{"StatefulSet", "no-service", policy.RuleHeadlessMissing, "fail"})
	add(StoredStatefulSet("foreign-svc", policy.StatefulMulti),
		Finding{"StatefulSet", "foreign-svc", policy.RuleHeadlessConflict, "warn"})
	// A stateful-multi StatefulSet whose instances share one claim.
	shared := StoredStatefulSet("shared", policy.StatefulMulti)
	shared.Spec.Template.Spec.Volumes = []corev1.Volume{ClaimVolume("shared", "shared-data")}
	shared.Spec.Template.Spec.Containers[0].VolumeMounts = append(shared.Spec.Template.Spec.Containers[0].VolumeMounts,
		corev1.VolumeMount{Name: "shared", MountPath: "/shared"})
	add(shared, Finding{"StatefulSet", "shared", policy.RuleSharedClaim, "warn"})
	// A multi-replica Deployment on a ReadWriteOnce claim.
	rwo := Deployment("rwo", policy.StatelessMulti, 2)
	MountClaim(&rwo.Spec.Template.Spec, "rwo-data")
	add(rwo, Finding{"Deployment", "rwo", policy.RuleSharedClaim, "warn"})
	// A quorum workload at an even count.
	quorum := Deployment("quorum", policy.StatelessMulti, 2)
	quorum.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
	add(quorum, Finding{"Deployment", "quorum", policy.RuleQuorum, "fail"})
	// An unknown deploy type, and a type of the other kind.
	add(Deployment("unknown-type", "stateless-double", 0),
		Finding{"Deployment", "unknown-type", policy.RuleKindMismatch, "fail"})
	add(Deployment("mismatch", policy.StatefulMulti, 0),
		Finding{"Deployment", "mismatch", policy.RuleKindMismatch, "fail"})
	// Audited and clean; and not managed at all.
	add(Deployment("clean", policy.StatelessMulti, 0))
	add(Deployment("unmanaged", "", 2))
	return objects, findings
}

// StoredStatefulSet is a StatefulSet with no replicas as it is stored once
// statekeeper mutated it: its Service named and its "data" claim template declared.
func StoredStatefulSet(name string, deployType policy.DeployType) *appsv1.StatefulSet {
	sts := StatefulSet(name, deployType, 0)
	sts.Spec.ServiceName = name
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*Claim("data", corev1.ReadWriteOnce)}
	return sts
}

// HPA scales the apps/v1 workload kind/target between 1 and maxReplicas on CPU.
func HPA(name, kind, target string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: target},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
			}}},
		},
	}
}

// headless is a headless Service of the pods app=<name>, not statekeeper's.
func headless(name string) *corev1.Service {
	svc := clusterIPService(name)
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	return svc
}

// clusterIPService is an ordinary Service of the pods app=<name>.
func clusterIPService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "tcp", Port: 80}},
		},
	}
}
