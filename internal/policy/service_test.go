package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// redisSTS is the example: stateful-multi, no serviceName given.
func redisSTS() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "redis", Namespace: "shop", UID: "uid-redis",
			Labels: map[string]string{LabelDeployType: "stateful-multi", LabelComponent: "cache"},
		},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{
					{Name: "setup", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 9000}}},
					{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
						Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 6380}}},
				},
				Containers: []corev1.Container{
					{Name: "redis", Ports: []corev1.ContainerPort{
						{Name: "redis", ContainerPort: 6379},
						{ContainerPort: 8080},
						{Name: "gossip", ContainerPort: 16379, Protocol: corev1.ProtocolUDP},
					}},
					{Name: "exporter", Ports: []corev1.ContainerPort{
						{Name: "redis", ContainerPort: 9121},   // name taken
						{Name: "again", ContainerPort: 6379},   // number taken
						{Name: "metrics", ContainerPort: 9122}, // kept
					}},
				},
			}},
		},
	}
}

func redisOwnerRef() metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "StatefulSet", Name: "redis", UID: "uid-redis",
		Controller: ptr.To(true), // no blockOwnerDeletion: see ownerReference
	}
}

// wantRedisService is HeadlessService(redisSTS()), spelled out.
func wantRedisService() *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "redis-headless", Namespace: "shop",
			Labels:          map[string]string{LabelManagedBy: ManagerName, LabelComponent: "cache"},
			OwnerReferences: []metav1.OwnerReference{redisOwnerRef()},
		},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 map[string]string{"app": "redis"},
			Ports: []corev1.ServicePort{
				{Name: "redis", Protocol: corev1.ProtocolTCP, Port: 6379, TargetPort: intstr.FromString("redis")},
				{Name: "gossip", Protocol: corev1.ProtocolUDP, Port: 16379, TargetPort: intstr.FromString("gossip")},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9122, TargetPort: intstr.FromString("metrics")},
				{Name: "proxy", Protocol: corev1.ProtocolTCP, Port: 6380, TargetPort: intstr.FromString("proxy")},
			},
		},
	}
}

func TestHeadlessService(t *testing.T) {
	longName := strings.Repeat("a", 70)
	tests := []struct {
		name string
		sts  func() *appsv1.StatefulSet
		want func() *corev1.Service
	}{
		{name: "named ports of containers and sidecars, de-duplicated", sts: redisSTS, want: wantRedisService},
		{
			name: "spec.serviceName is used; component defaults to the name; no named ports, no ports",
			sts: func() *appsv1.StatefulSet {
				return &appsv1.StatefulSet{
					ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", UID: "uid-db"},
					Spec: appsv1.StatefulSetSpec{
						ServiceName: "db",
						Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
						Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
							{Name: "db", Ports: []corev1.ContainerPort{{ContainerPort: 5432}}},
						}}},
					},
				}
			},
			want: func() *corev1.Service {
				return &corev1.Service{
					TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
					ObjectMeta: metav1.ObjectMeta{
						Name: "db", Namespace: "shop",
						Labels: map[string]string{LabelManagedBy: ManagerName, LabelComponent: "db"},
						OwnerReferences: []metav1.OwnerReference{{
							APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-db",
							Controller: ptr.To(true),
						}},
					},
					Spec: corev1.ServiceSpec{
						Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone,
						PublishNotReadyAddresses: true, Selector: map[string]string{"app": "db"},
					},
				}
			},
		},
		{
			name: "a name too long for a label value: hashed Service name, no component label, no selector",
			sts: func() *appsv1.StatefulSet {
				return &appsv1.StatefulSet{
					ObjectMeta: metav1.ObjectMeta{Name: longName, Namespace: "shop", UID: "uid-long"},
					Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{
						MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}},
					}},
				}
			},
			want: func() *corev1.Service {
				return &corev1.Service{
					TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
					ObjectMeta: metav1.ObjectMeta{
						Name: HeadlessServiceName(longName), Namespace: "shop",
						Labels: map[string]string{LabelManagedBy: ManagerName},
						OwnerReferences: []metav1.OwnerReference{{
							APIVersion: "apps/v1", Kind: "StatefulSet", Name: longName, UID: "uid-long",
							Controller: ptr.To(true),
						}},
					},
					Spec: corev1.ServiceSpec{
						Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone,
						PublishNotReadyAddresses: true,
					},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want(), HeadlessService(tt.sts()))
		})
	}
}

// storedRedisService is the managed Service as the API server returns it:
// defaults filled in, a clusterIPs list, a resourceVersion.
func storedRedisService() *corev1.Service {
	svc := wantRedisService()
	svc.ResourceVersion = "42"
	svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	return svc
}

func TestPlanHeadlessService(t *testing.T) {
	tests := []struct {
		name    string
		current func() *corev1.Service
		want    func() ServicePlan
	}{
		{
			name:    "missing: create",
			current: func() *corev1.Service { return nil },
			want:    func() ServicePlan { return ServicePlan{Action: ServiceCreate, Service: wantRedisService()} },
		},
		{
			name:    "as stored by the API server: in sync",
			current: storedRedisService,
			want:    func() ServicePlan { return ServicePlan{Action: ServiceInSync} },
		},
		{
			name: "owned fields drifted: repaired, everything else kept",
			current: func() *corev1.Service {
				svc := storedRedisService()
				svc.Labels = map[string]string{LabelManagedBy: ManagerName, "team": "a"}
				svc.Annotations = map[string]string{"note": "kept"}
				svc.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "uid-x"}}
				svc.Spec.Selector = map[string]string{"app": "other"}
				svc.Spec.Ports = svc.Spec.Ports[:1]
				svc.Spec.PublishNotReadyAddresses = false
				return svc
			},
			want: func() ServicePlan {
				svc := storedRedisService()
				svc.Labels = map[string]string{LabelManagedBy: ManagerName, LabelComponent: "cache", "team": "a"}
				svc.Annotations = map[string]string{"note": "kept"}
				svc.OwnerReferences = []metav1.OwnerReference{
					{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "uid-x"},
					redisOwnerRef(),
				}
				return ServicePlan{Action: ServiceUpdate, Service: svc}
			},
		},
		{
			name: "owned by an earlier StatefulSet of the same name: adopted",
			current: func() *corev1.Service {
				svc := storedRedisService()
				svc.OwnerReferences[0].UID = "uid-old"
				return svc
			},
			want: func() ServicePlan { return ServicePlan{Action: ServiceUpdate, Service: storedRedisService()} },
		},
		{
			name: "managed but no longer headless: recreate",
			current: func() *corev1.Service {
				svc := storedRedisService()
				svc.Spec.ClusterIP = "10.0.0.7"
				svc.Spec.ClusterIPs = []string{"10.0.0.7"}
				return svc
			},
			want: func() ServicePlan { return ServicePlan{Action: ServiceRecreate, Service: wantRedisService()} },
		},
		{
			name: "managed for another StatefulSet: conflict",
			current: func() *corev1.Service {
				svc := storedRedisService()
				svc.OwnerReferences[0].Name, svc.OwnerReferences[0].UID = "cache", "uid-cache"
				return svc
			},
			want: func() ServicePlan {
				return ServicePlan{Action: ServiceConflict, Reason: `service "redis-headless" is managed by statekeeper for StatefulSet "cache"; ` +
					`statekeeper leaves it alone: each StatefulSet needs a headless Service of its own (spec.serviceName)`}
			},
		},
		{
			name: "foreign and headless: left alone quietly",
			current: func() *corev1.Service {
				return &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "redis-headless", Namespace: "shop", Labels: map[string]string{"app": "redis"}},
					Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
				}
			},
			want: func() ServicePlan { return ServicePlan{Action: ServiceForeign} },
		},
		{
			name: "foreign and not headless: conflict",
			current: func() *corev1.Service {
				return &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "redis-headless", Namespace: "shop"},
					Spec:       corev1.ServiceSpec{ClusterIP: "10.0.0.9"},
				}
			},
			want: func() ServicePlan {
				return ServicePlan{Action: ServiceConflict, Reason: `service "redis-headless" is not managed by statekeeper ` +
					`(no app.kubernetes.io/managed-by=statekeeper label) and is not headless (spec.clusterIP is "10.0.0.9"), ` +
					`so the pods of statefulset "redis" get no per-pod DNS names and statekeeper stamps no fqdn, primary-fqdn or peers on them; ` +
					`statekeeper leaves the service alone: if the pods need those names, recreate it with clusterIP: None`}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current := tt.current()
			var before *corev1.Service
			if current != nil {
				before = current.DeepCopy()
			}
			assert.Equal(t, tt.want(), PlanHeadlessService(redisSTS(), current))
			assert.Equal(t, before, current, "current must not be modified")
		})
	}
}

func TestPlanHeadlessServiceConverges(t *testing.T) {
	// Writing back an Update's Service must leave nothing to do.
	current := storedRedisService()
	current.Spec.Selector = nil
	current.Spec.Ports = nil
	delete(current.Labels, LabelComponent)
	current.OwnerReferences = nil
	plan := PlanHeadlessService(redisSTS(), current)
	assert.Equal(t, ServiceUpdate, plan.Action)
	assert.Equal(t, ServicePlan{Action: ServiceInSync}, PlanHeadlessService(redisSTS(), plan.Service))
}

func TestWithControllerReference(t *testing.T) {
	ours := metav1.OwnerReference{Kind: "StatefulSet", Name: "a", UID: "u1", Controller: ptr.To(true)}
	other := metav1.OwnerReference{Kind: "ConfigMap", Name: "c", UID: "u2"}
	otherController := metav1.OwnerReference{Kind: "StatefulSet", Name: "b", UID: "u3", Controller: ptr.To(true)}
	stale := ours
	stale.Name = "a-renamed-in-the-cache"
	// An earlier statekeeper set blockOwnerDeletion; keeping it needs no
	// right under OwnerReferencesPermissionEnforcement, setting it would.
	blocking := ours
	blocking.BlockOwnerDeletion = ptr.To(true)
	tests := []struct {
		name string
		refs []metav1.OwnerReference
		want []metav1.OwnerReference
	}{
		{name: "none", want: []metav1.OwnerReference{ours}},
		{name: "replaced in place", refs: []metav1.OwnerReference{stale, other}, want: []metav1.OwnerReference{ours, other}},
		{name: "a stored blockOwnerDeletion is kept", refs: []metav1.OwnerReference{blocking}, want: []metav1.OwnerReference{blocking}},
		{name: "another controller dropped, duplicates dropped",
			refs: []metav1.OwnerReference{other, otherController, stale, stale},
			want: []metav1.OwnerReference{other, ours}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, withControllerReference(tt.refs, ours))
		})
	}
}
