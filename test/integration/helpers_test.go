package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

const (
	// settleTimeout bounds how long a test waits for statekeeper's informer
	// caches to see an object the test just wrote.
	settleTimeout = 15 * time.Second
	settlePoll    = 50 * time.Millisecond
)

// tenant is one test's slice of the shared API server: its own namespace and
// a client whose warnings it can read.
type tenant struct {
	t        *testing.T
	ctx      context.Context
	ns       string
	c        client.Client
	warnings *warningRecorder
}

// newTenant creates a fresh namespace, labelled with the statekeeper mode
// unless mode is empty (the default mode, enforce, applies then).
func newTenant(t *testing.T, mode policy.Mode) *tenant {
	t.Helper()
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(shared.config)
	cfg.WarningHandlerWithContext = warnings
	c, err := client.New(cfg, client.Options{Scheme: shared.scheme, HTTPClient: shared.httpClient, Mapper: shared.mapper})
	require.NoError(t, err)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	if mode != "" {
		ns.Labels = map[string]string{policy.LabelMode: string(mode)}
	}
	ctx := t.Context()
	require.NoError(t, c.Create(ctx, ns))
	// envtest runs no namespace controller, so deleting would only leave the
	// namespace Terminating; the API server is thrown away after the suite.
	return &tenant{t: t, ctx: ctx, ns: ns.Name, c: c, warnings: warnings}
}

// in is the tenant as seen from subtest t, which shares its namespace: its
// failures must stop t, not the parent test.
func (tn *tenant) in(t *testing.T) *tenant {
	sub := *tn
	sub.t, sub.ctx = t, t.Context()
	return &sub
}

// warningRecorder collects the Warning headers of the API server's answers,
// which carry the warnings of admission webhooks (what kubectl prints).
type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, text)
}

// take returns the warnings received since the last take and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.messages
	w.messages = nil
	return out
}

// --- objects -----------------------------------------------------------------

// withClaimVolume is d with the existing claim claimName mounted as volume "data".
func withClaimVolume(d *appsv1.Deployment, claimName string) *appsv1.Deployment {
	workloads.MountClaim(&d.Spec.Template.Spec, claimName)
	return d
}

// storedClaimTemplate is an injected claim template as the API server stores
// it: statekeeper's fields plus the API server's defaults for claim templates.
func storedClaimTemplate(name, size, class string) corev1.PersistentVolumeClaim {
	pvc := *workloads.Claim(name, corev1.ReadWriteOnce)
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	pvc.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	pvc.Status.Phase = corev1.ClaimPending
	pvc.Annotations = map[string]string{policy.AnnotationInjected: "true"}
	if class != "" {
		pvc.Spec.StorageClassName = ptr.To(class)
	}
	return pvc
}

// withDeployTypeLabel is labels plus the deploy-type label the StatefulSet
// mutation adds to the pod template.
func withDeployTypeLabel(labels map[string]string, deployType policy.DeployType) map[string]string {
	out := map[string]string{policy.LabelDeployType: string(deployType)}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// --- calls as kubectl makes them ----------------------------------------------

// create creates obj in the tenant's namespace; with dryRun it is
// `kubectl create --dry-run=server`, and obj receives the answer either way.
func (tn *tenant) create(obj client.Object, dryRun bool) error {
	obj.SetNamespace(tn.ns)
	if dryRun {
		return tn.c.Create(tn.ctx, obj, client.DryRunAll)
	}
	return tn.c.Create(tn.ctx, obj)
}

// update is `kubectl replace` / `kubectl edit`: a PUT of the whole object.
func (tn *tenant) update(obj client.Object, dryRun bool) error {
	if dryRun {
		return tn.c.Update(tn.ctx, obj, client.DryRunAll)
	}
	return tn.c.Update(tn.ctx, obj)
}

// scale is `kubectl scale --replicas=n`: a JSON merge patch of the /scale
// subresource (kubectl's ScaleSimple without preconditions).
func (tn *tenant) scale(obj client.Object, replicas int32, dryRun bool) error {
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	opts := []client.SubResourcePatchOption{client.WithSubResourceBody(&autoscalingv1.Scale{})}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return tn.c.SubResource("scale").Patch(tn.ctx, obj, patch, opts...)
}

// scaleByUpdate is what the HPA controller does: read the Scale, PUT it back
// with new replicas.
func (tn *tenant) scaleByUpdate(obj client.Object, replicas int32, dryRun bool) error {
	scale := &autoscalingv1.Scale{}
	if err := tn.c.SubResource("scale").Get(tn.ctx, obj, scale); err != nil {
		return err
	}
	scale.Spec.Replicas = replicas
	opts := []client.SubResourceUpdateOption{client.WithSubResourceBody(scale)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return tn.c.SubResource("scale").Update(tn.ctx, obj, opts...)
}

// setStatusReplicas writes status.replicas as a workload controller would
// (envtest runs none, so status stays what the test sets).
func (tn *tenant) setStatusReplicas(obj client.Object, replicas int32) {
	tn.t.Helper()
	require.NoError(tn.t, tn.c.Get(tn.ctx, client.ObjectKeyFromObject(obj), obj))
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Status.Replicas = replicas
	case *appsv1.StatefulSet:
		o.Status.Replicas = replicas
	default:
		tn.t.Fatalf("setStatusReplicas: unsupported %T", obj)
	}
	require.NoError(tn.t, tn.c.Status().Update(tn.ctx, obj))
}

// get reads the stored object of obj's name in the tenant's namespace into obj.
func (tn *tenant) get(obj client.Object) {
	tn.t.Helper()
	obj.SetNamespace(tn.ns)
	require.NoError(tn.t, tn.c.Get(tn.ctx, client.ObjectKeyFromObject(obj), obj))
}

// mustCreate creates obj and fails the test on any error.
func (tn *tenant) mustCreate(obj client.Object) {
	tn.t.Helper()
	require.NoError(tn.t, tn.create(obj, false))
}

// assertNotStored checks that no object of obj's kind and name exists in the
// tenant's namespace.
func (tn *tenant) assertNotStored(obj client.Object) {
	tn.t.Helper()
	fresh := obj.DeepCopyObject().(client.Object)
	err := tn.c.Get(tn.ctx, client.ObjectKey{Namespace: tn.ns, Name: obj.GetName()}, fresh)
	assert.True(tn.t, apierrors.IsNotFound(err), "want %T %q not stored, got err=%v", obj, obj.GetName(), err)
}

// --- decisions that depend on statekeeper's caches ----------------------------

// A write is one API call, run as a server-side dry run or for real.
type write func(dryRun bool) error

// denied runs op for real once statekeeper denies its dry run, and returns
// the real call's error. Rules that read the cluster (kind-switch, /scale,
// HPA, headless-conflict) see it through informer caches that lag the test's
// own writes by a few milliseconds; dry runs have no side effects, so
// retrying them until the caches caught up makes the real call deterministic.
func (tn *tenant) denied(op write) error {
	tn.t.Helper()
	tn.settle(op, func(err error) bool { return err != nil })
	tn.warnings.take()
	err := op(false)
	require.Error(tn.t, err, "the dry run was denied but the real call was admitted")
	return err
}

// admitted runs op for real once statekeeper admits its dry run, requires
// success and returns the warnings of the real call.
func (tn *tenant) admitted(op write) []string {
	tn.t.Helper()
	tn.settle(op, func(err error) bool { return err == nil })
	tn.warnings.take()
	require.NoError(tn.t, op(false))
	return tn.warnings.take()
}

func (tn *tenant) settle(op write, done func(error) bool) {
	tn.t.Helper()
	var last error
	ok := assert.Eventually(tn.t, func() bool {
		last = op(true)
		return done(last)
	}, settleTimeout, settlePoll)
	require.True(tn.t, ok, "the dry run never reached the expected decision; last error: %v", last)
}

// warned runs op for real once its dry run carries a warning of rule (in warn
// mode a rule that reads a stale cache admits silently), and returns the real
// call's warnings.
func (tn *tenant) warned(op write, rule policy.Rule) []string {
	tn.t.Helper()
	tn.settle(func(bool) error {
		tn.warnings.take()
		if err := op(true); err != nil {
			return err
		}
		for _, w := range tn.warnings.take() {
			if strings.Contains(w, fmt.Sprintf("[%s]", rule)) {
				return nil
			}
		}
		return fmt.Errorf("no [%s] warning yet", rule)
	}, func(err error) bool { return err == nil })
	require.NoError(tn.t, op(false))
	return tn.warnings.take()
}

// awaitClaimInCache waits until statekeeper's cache holds the ReadWriteOnce
// claim, seen through the one mutation that reads claims: Recreate for a
// stateless-single Deployment that mounts it.
func (tn *tenant) awaitClaimInCache(claimName string) {
	tn.t.Helper()
	probe := withClaimVolume(workloads.Deployment("claim-probe", policy.StatelessSingle, 1), claimName)
	tn.settle(func(bool) error {
		d := probe.DeepCopy()
		if err := tn.create(d, true); err != nil {
			return err
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			return fmt.Errorf("claim %q is not in statekeeper's cache yet", claimName)
		}
		return nil
	}, func(err error) bool { return err == nil })
}

// The chart's webhooks, as the API server names them when one denies.
const (
	mutateWorkloads   = "workloads.mutate.statekeeper.io"
	validateWorkloads = "workloads.validate.statekeeper.io"
	validateScaling   = "scaling.validate.statekeeper.io"
	// validateUnlabelled judges unlabelled workload CREATEs (kind-switch).
	validateUnlabelled = "unlabelled-workloads.validate.statekeeper.io"
)

// The kinds a denial names: the kind of the request the webhook answered.
var (
	statefulSetKind = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	deploymentKind  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	scaleKind       = schema.GroupKind{Group: "autoscaling", Kind: "Scale"}
	hpaKind         = schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}
)

// The fields statekeeper's denials name.
var (
	replicasPath    = field.NewPath("spec", "replicas")
	maxReplicasPath = field.NewPath("spec", "maxReplicas")
	deployTypePath  = field.NewPath("metadata", "labels").Key(policy.LabelDeployType)
	serviceNamePath = field.NewPath("spec", "serviceName")
)

// denial is one statekeeper denial as the API server returns it: the 422
// Invalid status internal/webhook answers, whose one Forbidden cause names
// field and carries the violation, wrapped with the name of the webhook.
type denial struct {
	webhook string
	kind    schema.GroupKind
	name    string
	field   *field.Path
	// message is the violation as users read it, ending in its [rule].
	message string
}

// status is the whole status kubectl shows for d, e.g. `admission webhook
// "workloads.validate.statekeeper.io" denied the request: StatefulSet.apps
// "db" is invalid: spec.replicas: Forbidden: statefulset "db" is
// stateful-single: replicas must be 0 or 1, got 3 [single-instance]`.
func (d denial) status() metav1.Status {
	status := apierrors.NewInvalid(d.kind, d.name, field.ErrorList{field.Forbidden(d.field, d.message)}).ErrStatus
	status.Message = fmt.Sprintf("admission webhook %q denied the request: %s", d.webhook, status.Message)
	return status
}

// requireDenial checks that err is exactly the denial want: code, reason,
// message and the whole list of causes.
func requireDenial(t *testing.T, err error, want denial) {
	t.Helper()
	var apiErr apierrors.APIStatus
	require.ErrorAs(t, err, &apiErr, "want a denial by %s", want.webhook)
	got := apiErr.Status()
	got.TypeMeta = metav1.TypeMeta{} // set by the client's decoding, not by statekeeper
	assert.Equal(t, want.status(), got)
}

// singleInstanceMessage is docs/spec.md §4's denial of a replica count on a *-single workload.
func singleInstanceMessage(kind policy.Kind, name string, deployType policy.DeployType, replicas int32) string {
	return fmt.Sprintf("%s %q is %s: replicas must be 0 or 1, got %d [%s]", kind.Lower(), name, deployType, replicas, policy.RuleSingleInstance)
}

// kindSwitchMessage is docs/spec.md §4's kind-switch denial; refs are as kubectl
// names objects (`deployment "db"`).
func kindSwitchMessage(runningRef, component, creatingRef string) string {
	return fmt.Sprintf("%s (component %q) is running with persistent volumes; scale it to 0 and back up its data before creating %s [%s]",
		runningRef, component, creatingRef, policy.RuleKindSwitch)
}
