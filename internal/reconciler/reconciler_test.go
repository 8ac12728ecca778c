package reconciler

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

func redis(deployType string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "redis", Namespace: "shop", UID: "uid-redis",
			Labels: map[string]string{policy.LabelDeployType: deployType},
		},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "redis-headless",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "redis", Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}}},
			}}},
		},
	}
}

// wantService is the Service the reconciler must leave behind for redis(),
// as the fake client returns it (no TypeMeta).
func wantService() *corev1.Service {
	svc := policy.HeadlessService(redis("stateful-multi"))
	svc.TypeMeta = metav1.TypeMeta{}
	return svc
}

func foreignService(clusterIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-headless", Namespace: "shop", Labels: map[string]string{"app": "redis"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Selector:  map[string]string{"app": "redis"},
			Ports:     []corev1.ServicePort{{Name: "redis", Port: 6379, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// harness mimics the manager: client is the cache, which holds every
// Service as the lookups' cache options make it, and the writer.
type harness struct {
	client   client.WithWatch
	recorder *events.FakeRecorder
	r        *Reconciler
}

func newHarness(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) *harness {
	t.Helper()
	builder := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...)
	if funcs != nil {
		builder = builder.WithInterceptorFuncs(*funcs)
	}
	h := &harness{client: builder.Build(), recorder: events.NewFakeRecorder(10)}
	h.r = &Reconciler{Client: h.client, Recorder: h.recorder}
	return h
}

func (h *harness) reconcile(t *testing.T) (reconcile.Result, error) {
	t.Helper()
	return h.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: "redis"}})
}

// service returns the stored Service, or nil, with the server-set resourceVersion cleared.
func service(t *testing.T, c client.Reader) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "redis-headless"}, &svc)
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	svc.ResourceVersion = ""
	return &svc
}

// recorded drains the events recorded so far.
func (h *harness) recorded() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestReconcile(t *testing.T) {
	const created = `Normal ServiceCreated created headless service "redis-headless"`
	tests := []struct {
		name       string
		objs       []client.Object
		funcs      *interceptor.Funcs
		want       *corev1.Service // in the cache/writer after Reconcile
		wantResult reconcile.Result
		wantErr    string
		wantEvents []string
	}{
		{
			name:       "missing Service is created",
			objs:       []client.Object{redis("stateful-multi")},
			want:       wantService(),
			wantEvents: []string{created},
		},
		{
			name: "drifted managed Service is repaired, foreign labels and annotations kept",
			objs: []client.Object{redis("stateful-single"), func() client.Object {
				svc := wantService()
				svc.Labels["team"] = "a"
				svc.Annotations = map[string]string{"note": "kept"}
				svc.Spec.Selector = map[string]string{"app": "other"}
				svc.Spec.Ports = nil
				svc.Spec.PublishNotReadyAddresses = false
				svc.OwnerReferences = nil
				return svc
			}()},
			want: func() *corev1.Service {
				svc := wantService()
				svc.Labels["team"] = "a"
				svc.Annotations = map[string]string{"note": "kept"}
				return svc
			}(),
			wantEvents: []string{`Normal ServiceRepaired repaired headless service "redis-headless" ` +
				`(selector, ports, publishNotReadyAddresses, labels or owner)`},
		},
		{
			name: "managed Service that is no longer headless is recreated",
			objs: []client.Object{redis("stateful-multi"), func() client.Object {
				svc := wantService()
				svc.Spec.ClusterIP = "10.0.0.7"
				return svc
			}()},
			want: wantService(),
			wantEvents: []string{`Normal ServiceRecreated recreated service "redis-headless" as headless: ` +
				`its clusterIP was "10.0.0.7" and a clusterIP cannot be changed`},
		},
		{
			name:       "managed Service in sync: nothing written",
			objs:       []client.Object{redis("stateful-multi"), wantService()},
			want:       wantService(),
			funcs:      &interceptor.Funcs{Patch: failWrites, Create: failCreate, Delete: failDelete},
			wantEvents: nil,
		},
		{
			name:       "foreign non-headless Service is left alone with a warning",
			objs:       []client.Object{redis("stateful-multi"), foreignService("10.0.0.9")},
			want:       foreignService("10.0.0.9"),
			wantResult: reconcile.Result{RequeueAfter: foreignRecheckInterval},
			wantEvents: []string{`Warning ServiceConflict service "redis-headless" is not managed by statekeeper ` +
				`(no app.kubernetes.io/managed-by=statekeeper label) and is not headless (spec.clusterIP is "10.0.0.9"), ` +
				`so the pods of statefulset "redis" get no per-pod DNS names and statekeeper stamps no fqdn, primary-fqdn or peers on them; ` +
				`statekeeper leaves the service alone: if the pods need those names, recreate it with clusterIP: None`},
		},
		{
			name:       "foreign headless Service is left alone quietly",
			objs:       []client.Object{redis("stateful-multi"), foreignService(corev1.ClusterIPNone)},
			want:       foreignService(corev1.ClusterIPNone),
			wantResult: reconcile.Result{RequeueAfter: foreignRecheckInterval},
		},
		{
			name: "stateless StatefulSet is ignored",
			objs: []client.Object{redis("stateless-multi")},
		},
		{
			name: "StatefulSet without a deploy type is ignored",
			objs: []client.Object{func() client.Object { s := redis(""); s.Labels = nil; return s }()},
		},
		{
			name: "StatefulSet being deleted is left to the garbage collector",
			objs: []client.Object{func() client.Object {
				s := redis("stateful-multi")
				s.Finalizers = []string{"example.com/hold"}
				now := metav1.Now()
				s.DeletionTimestamp = &now
				return s
			}()},
		},
		{
			name: "StatefulSet gone: nothing to do",
		},
		{
			name:    "a Service the cache has not delivered yet: retried, nothing recorded",
			objs:    []client.Object{redis("stateful-multi")},
			funcs:   &interceptor.Funcs{Create: createExisting},
			wantErr: `creating service "redis-headless": services "redis-headless" already exists`,
		},
		{
			name:  "invalid Service name: reported once, not retried",
			objs:  []client.Object{redis("stateful-multi")},
			funcs: &interceptor.Funcs{Create: createInvalid},
			wantErr: `terminal error: creating service "redis-headless": Service "redis-headless" is invalid: ` +
				`metadata.name: Invalid value: "redis-headless": bad name`,
			wantEvents: []string{`Warning ServiceInvalid cannot create headless service "redis-headless": ` +
				`Service "redis-headless" is invalid: metadata.name: Invalid value: "redis-headless": bad name`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.funcs, tt.objs...)
			result, err := h.reconcile(t)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.wantResult, result)
			assert.Equal(t, tt.want, service(t, h.client), "service written")
			assert.Equal(t, tt.wantEvents, h.recorded())
		})
	}
}

// TestReconcileHealsDeletedService runs the sequence the reconciler exists for.
func TestReconcileHealsDeletedService(t *testing.T) {
	h := newHarness(t, nil, redis("stateful-multi"))
	_, err := h.reconcile(t)
	require.NoError(t, err)
	require.Equal(t, wantService(), service(t, h.client))

	require.NoError(t, h.client.Delete(context.Background(), wantService()))
	_, err = h.reconcile(t)
	require.NoError(t, err)
	assert.Equal(t, wantService(), service(t, h.client))
	assert.Equal(t, []string{
		`Normal ServiceCreated created headless service "redis-headless"`,
		`Normal ServiceCreated created headless service "redis-headless"`,
	}, h.recorded())

	// Once in sync, a third pass changes nothing.
	_, err = h.reconcile(t)
	require.NoError(t, err)
	assert.Empty(t, h.recorded())
}

func failWrites(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
	return assert.AnError
}

func failCreate(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
	return assert.AnError
}

func failDelete(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
	return assert.AnError
}

// createExisting answers as the API server does for a Service the cache has
// not delivered yet.
func createExisting(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
	return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "services"}, obj.GetName())
}

func createInvalid(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, obj.GetName(), field.ErrorList{
		field.Invalid(field.NewPath("metadata", "name"), obj.GetName(), "bad name"),
	})
}

func TestIsStateful(t *testing.T) {
	for deployType, want := range map[string]bool{
		"stateful-single": true, "stateful-multi": true,
		"stateless-single": false, "stateless-multi": false, "stateful": false, "": false,
	} {
		assert.Equal(t, want, isStateful(redis(deployType)), "deploy type %q", deployType)
	}
}

// The filters read the deploy type as policy does: the StatefulSet's own
// label, else its pod template's.
func TestFiltersReadThePodTemplate(t *testing.T) {
	onTemplate := func(own, template string) *appsv1.StatefulSet {
		sts := redis(own)
		if own == "" {
			delete(sts.Labels, policy.LabelDeployType)
		}
		if template != "" {
			sts.Spec.Template.Labels = map[string]string{policy.LabelDeployType: template}
		}
		return sts
	}
	tests := []struct {
		name                      string
		sts                       *appsv1.StatefulSet
		wantStateful, wantManaged bool
	}{
		{name: "unlabelled", sts: onTemplate("", "")},
		{name: "stateful on the template only", sts: onTemplate("", "stateful-multi"), wantStateful: true, wantManaged: true},
		{name: "stateless on the template only", sts: onTemplate("", "stateless-multi"), wantManaged: true},
		{name: "the StatefulSet's own label wins", sts: onTemplate("stateless-multi", "stateful-multi"), wantManaged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantStateful, isStateful(tt.sts), "isStateful")
			assert.Equal(t, tt.wantManaged, isManagedWorkload(tt.sts), "isManagedWorkload")
		})
	}
}

func TestSpecOrLabelsChanged(t *testing.T) {
	base := func(version string, generation int64, labels map[string]string) client.Object {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{ResourceVersion: version, Generation: generation, Labels: labels}}
	}
	stateful := map[string]string{policy.LabelDeployType: "stateful-multi"}
	tests := []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{name: "status only", old: base("1", 1, stateful), new: base("2", 1, stateful), want: false},
		{name: "spec changed", old: base("1", 1, stateful), new: base("2", 2, stateful), want: true},
		{name: "labels changed", old: base("1", 1, stateful), new: base("2", 1, map[string]string{"a": "b"}), want: true},
		{name: "periodic resync", old: base("1", 1, stateful), new: base("1", 1, stateful), want: true},
	}
	p := specOrLabelsChanged()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, p.Update(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.new}))
		})
	}
}

// TestSetupWithManager wires the controller into a manager; a static REST
// mapper keeps it from contacting an API server.
func TestSetupWithManager(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Service"), meta.RESTScopeNamespace)
	mapper.Add(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), meta.RESTScopeNamespace)
	mgr, err := ctrl.NewManager(&rest.Config{Host: "https://127.0.0.1:1"}, ctrl.Options{
		Scheme:         clientgoscheme.Scheme,
		MapperProvider: func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
		Metrics:        metricsserver.Options{BindAddress: "0"},
	})
	require.NoError(t, err)
	require.NoError(t, SetupWithManager(mgr, Options{}))
}

func TestReconcileLeavesOutOfScopeNamespacesAlone(t *testing.T) {
	h := newHarness(t, nil, redis("stateful-multi"))
	var asked []string
	h.r.InScope = func(_ context.Context, namespace string) (bool, error) {
		asked = append(asked, namespace)
		return false, nil
	}
	_, err := h.reconcile(t)
	require.NoError(t, err)
	assert.Nil(t, service(t, h.client), "no Service in an off or excluded namespace")
	assert.Empty(t, h.recorded())
	assert.Equal(t, []string{"shop"}, asked)

	h.r.InScope = func(context.Context, string) (bool, error) { return false, assert.AnError }
	_, err = h.reconcile(t)
	assert.ErrorIs(t, err, assert.AnError, "a namespace that cannot be read is retried")
}
