package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestAuditService(t *testing.T) {
	serviceName := field.NewPath("spec", "serviceName")
	foreign := func(clusterIP string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "redis-headless", Namespace: "shop"},
			Spec:       corev1.ServiceSpec{ClusterIP: clusterIP},
		}
	}
	ofAnother := storedRedisService()
	ofAnother.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "cache", UID: "uid-cache", Controller: new(true)}}
	stateless := redisSTS()
	stateless.Labels[LabelDeployType] = string(StatelessMulti)
	unmanaged := redisSTS()
	delete(unmanaged.Labels, LabelDeployType)

	tests := []struct {
		name string
		sts  *appsv1.StatefulSet
		svc  *corev1.Service
		want Result
	}{
		{name: "missing", sts: redisSTS(), want: Result{Denials: []Violation{{Rule: RuleHeadlessMissing, Field: serviceName,
			Message: `service "redis-headless" named by spec.serviceName of statefulset "redis" does not exist, so its pods get no per-pod DNS names; ` +
				`statekeeper creates it in enforce and warn namespaces (in audit mode create it yourself, headless: clusterIP: None)`}}}},
		{name: "managed and in sync", sts: redisSTS(), svc: storedRedisService()},
		{name: "foreign but headless", sts: redisSTS(), svc: foreign("None")},
		{name: "foreign and not headless", sts: redisSTS(), svc: foreign("10.0.0.7"), want: Result{Denials: []Violation{{
			Rule: RuleHeadlessConflict, Field: serviceName,
			Message: `service "redis-headless" named by spec.serviceName of statefulset "redis" is not headless (spec.clusterIP is "10.0.0.7", not "None") ` +
				`and is not managed by statekeeper; per-pod DNS needs a headless Service: recreate that Service with clusterIP: None, ` +
				`or set spec.serviceName to an unused name and statekeeper creates one`}}}},
		{name: "managed for another statefulset", sts: redisSTS(), svc: ofAnother, want: Result{Denials: []Violation{{
			Rule: RuleHeadlessConflict, Field: serviceName,
			Message: `service "redis-headless" is managed by statekeeper for StatefulSet "cache"; statekeeper leaves it alone: ` +
				`each StatefulSet needs a headless Service of its own (spec.serviceName)`}}}},
		{name: "not stateful: no service expected", sts: stateless},
		{name: "unmanaged", sts: unmanaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, AuditService(tt.sts, tt.svc))
		})
	}
}
