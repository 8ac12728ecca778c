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
	injectEnv := redisSTS()
	injectEnv.Annotations = map[string]string{AnnotationInjectEnv: "true"}
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
		{name: "foreign and not headless: warned as on CREATE", sts: redisSTS(), svc: foreign("10.0.0.7"), want: Result{Warnings: []Violation{{
			Rule: RuleHeadlessConflict, Field: serviceName,
			Message: `service "redis-headless" named by spec.serviceName of statefulset "redis" is not headless (spec.clusterIP is "10.0.0.7") ` +
				`and is not managed by statekeeper, so its pods get no per-pod DNS names (such as redis-0.redis-headless.shop.svc) and statekeeper stamps no fqdn, primary-fqdn or peers on them; ` +
				`statekeeper creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), ` +
				`or set spec.serviceName to an unused name and statekeeper creates a headless one`}}}},
		{name: "foreign and not headless with inject-env: denied", sts: injectEnv, svc: foreign("10.0.0.7"), want: Result{Denials: []Violation{{
			Rule: RuleHeadlessConflict, Field: field.NewPath("metadata", "annotations").Key(AnnotationInjectEnv),
			Message: `statefulset "redis" asks for its pods' identity as environment variables (statekeeper.io/inject-env: "true"), ` +
				`but service "redis-headless" named by its spec.serviceName is not headless (spec.clusterIP is "10.0.0.7") and is not managed by statekeeper, ` +
				`so its pods get no per-pod DNS names: STATEKEEPER_FQDN, STATEKEEPER_PRIMARY_FQDN and STATEKEEPER_PEERS would name addresses that never resolve, ` +
				`and an application that finds its peers through them would start alone; make service "redis-headless" headless (clusterIP: None), ` +
				`or remove statekeeper.io/inject-env (spec.serviceName cannot change on an existing statefulset)`}}}},
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
