//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestReleaseLifecycle takes the release through what a platform team does
// to it: upgrade with changed values, an outage, uninstall and a fresh
// install into a cluster that already runs stateful workloads. It is the
// only test that is not parallel, so Go runs it before all the others and
// alone; it leaves the release installed with the chart's defaults.
func TestReleaseLifecycle(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			restoreDefaultRelease(t)
		}
	})
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a renewed serving certificate is served with no failed admission", renewalWithoutFailedAdmission},
		{"helm upgrade with changed values changes the decisions", upgradeChangesDecisions},
		{"the failure policies as shipped", failurePoliciesAsShipped},
		{"helm uninstall leaves no webhook configuration behind", uninstallLeavesNothing},
		{"violations are stored without statekeeper", storeViolations(t)},
		{"a fresh install adopts a StatefulSet created without statekeeper", installAdoptsExistingStatefulSet},
		{"the audit reports what was stored before it started", auditReportsStoredViolations},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.FailNow() // each step starts from where the previous one ended
		}
	}
}

func upgradeChangesDecisions(t *testing.T) {
	ns := newNamespace(t, "") // the release's default mode applies
	tooMany := workloads.Deployment("web", policy.StatelessSingle, 2)

	require.NoError(t, suite.release.upgrade(t.Context(), "config.defaultMode=warn"))
	ns.eventuallyAdmission(warned(policy.RuleSingleInstance), tooMany)

	require.NoError(t, suite.release.upgrade(t.Context()))
	ns.eventuallyAdmission(denied(policy.RuleSingleInstance), tooMany)
}

// policyAnswers are the answers that must not depend on statekeeper
// running: `kubectl set image` on a managed StatefulSet and Deployment is
// admitted, and a scale-up of a stateless-single Deployment through an
// UPDATE is denied by the admission policy with the webhook's message.
func policyAnswers(t *testing.T, ns *namespace, image string) {
	t.Helper()
	ns.kubectl(nil, "set", "image", "statefulset/db", "db="+image).expect(t, allowed)
	ns.kubectl(nil, "set", "image", "deployment/single", "single="+image).expect(t, allowed)
	res := ns.kubectl(nil, "patch", "deployment", "single", "--type=merge", "-p", `{"spec":{"replicas":2}}`)
	res.expect(t, denied(policy.RuleSingleInstance))
	assert.Equal(t, policyDenialText("deployments", "single",
		`deployment "single" is stateless-single: replicas must be 0 or 1, got 2 [single-instance]`), res.stderr)
}

// failurePoliciesAsShipped stops statekeeper and checks what an outage
// blocks (the table in README.md): managed writes in enforce namespaces and
// scaling them past one replica; and what it does not: scaling to 0 or 1,
// anything in a warn namespace, unmanaged workloads, pods.
func failurePoliciesAsShipped(t *testing.T) {
	ns := newNamespace(t, "")
	ns.create(workloads.StatefulSet("db", policy.StatefulMulti, 1)).expect(t, allowed)
	before := ns.eventuallyReadyPod("db-0", "")
	require.Equal(t, "0", before.Annotations[policy.AnnotationOrdinal], "db-0 was created with statekeeper serving")
	kept := unboundClaims(workloads.StatefulSet("kept", policy.StatefulSingle, 0))
	kept.Annotations[policy.AnnotationProtect] = "true"
	ns.create(kept).expect(t, allowed)
	ns.create(workloads.Deployment("single", policy.StatelessSingle, 1)).expect(t, allowed)
	lenient := newNamespace(t, policy.ModeWarn)
	lenient.create(workloads.Deployment("web", policy.StatelessSingle, 1)).expect(t, allowed)

	require.NoError(t, suite.release.stop(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		require.NoError(t, suite.release.start(ctx))
	})

	// Workloads fail closed: the API server refuses a managed StatefulSet
	// with its own error about the unreachable webhook...
	res := ns.create(workloads.StatefulSet("other", policy.StatefulMulti, 1))
	require.Error(t, res.err, "a managed StatefulSet was admitted with statekeeper down: %s", res)
	assert.Contains(t, res.stderr, `failed calling webhook "workloads.mutate.statekeeper.io"`)
	var missing appsv1.StatefulSet
	err := suite.client.Get(t.Context(), client.ObjectKey{Namespace: ns.name, Name: "other"}, &missing)
	assert.True(t, apierrors.IsNotFound(err), "statefulset other was stored: %v", err)
	// ...while the match conditions keep every unmanaged workload out of it.
	ns.create(withoutMounts(workloads.StatefulSet("unmanaged", "", 0))).expect(t, allowed)

	// Scaling to 0 or 1 is never sent to statekeeper (the scaling webhook's
	// match condition), so it is the way out even now; past one it fails closed.
	ns.kubectl(nil, "scale", "deployment", "single", "--replicas=0").expect(t, allowed)
	ns.kubectl(nil, "scale", "deployment", "single", "--replicas=1").expect(t, allowed)
	res = ns.kubectl(nil, "scale", "deployment", "single", "--replicas=3")
	require.Error(t, res.err, "scaled past one with statekeeper down: %s", res)
	assert.Contains(t, res.stderr, `failed calling webhook "scaling.validate.statekeeper.io"`)

	// The admission policy (the chart renders it: the API server serves it)
	// decides the UPDATEs that change nothing a lookup or a mutation reads,
	// which the webhooks are then never sent: a rollout goes through, and a
	// lookup-free denial holds, in the webhook's words.
	policyAnswers(t, ns, "registry.k8s.io/pause:3.9")
	// With statekeeper back, the same writes get the same answers.
	require.NoError(t, suite.release.start(t.Context()))
	policyAnswers(t, ns, workloads.Image)
	require.NoError(t, suite.release.stop(t.Context()))

	// A warn namespace is never blocked: its webhooks fail open, so writes
	// are admitted unchecked. The mutating admission policy (the chart
	// renders it: the API server serves it) still makes the StatefulSet
	// mutations that need no lookup.
	lenient.create(withoutMounts(workloads.StatefulSet("db", policy.StatefulSingle, 1))).expect(t, allowed)
	lenient.kubectl(nil, "scale", "deployment", "web", "--replicas=3").expect(t, allowed)
	var mutated appsv1.StatefulSet
	lenient.get("db", &mutated)
	assert.Equal(t, "db-headless", mutated.Spec.ServiceName, "not mutated by the policy with statekeeper down")
	assert.Equal(t, string(policy.StatefulSingle), mutated.Spec.Template.Labels[policy.LabelDeployType], "not mutated by the policy with statekeeper down")

	// Pod stamping fails open: the StatefulSet controller recreates a
	// deleted pod, without the identity statekeeper would have stamped.
	ns.kubectl(nil, "delete", "pod", "db-0", "--wait=false").expect(t, allowed)
	after := ns.eventuallyReadyPod("db-0", before.UID)
	assert.Empty(t, identityOf(after), "db-0 stamped with statekeeper down")

	// Deletion protection fails closed for protected workloads only: the
	// API server sends no other deletion to statekeeper.
	res = ns.kubectl(nil, "delete", "statefulset", "kept", "--wait=false")
	require.Error(t, res.err, "a protected StatefulSet was deleted with statekeeper down: %s", res)
	assert.Contains(t, res.stderr, `failed calling webhook "deletions.validate.statekeeper.io"`)
	ns.kubectl(nil, "delete", "statefulset", "db", "--wait=false").expect(t, allowed)
}

func uninstallLeavesNothing(t *testing.T) {
	require.NoError(t, suite.release.uninstall(t.Context()))
	left, err := webhookConfigurations(t.Context())
	require.NoError(t, err)
	assert.Empty(t, left, "webhook configurations left by helm uninstall")
	for _, list := range []client.ObjectList{
		&admissionregistrationv1.ValidatingAdmissionPolicyList{}, &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{},
		&admissionregistrationv1.MutatingAdmissionPolicyList{}, &admissionregistrationv1.MutatingAdmissionPolicyBindingList{},
	} {
		require.NoError(t, suite.client.List(t.Context(), list, client.MatchingLabels{"app.kubernetes.io/instance": releaseName}))
		assert.Zero(t, meta.LenList(list), "%T left by helm uninstall", list)
	}
	certs, err := certManagerObjects(t.Context())
	require.NoError(t, err)
	assert.Empty(t, certs, "cert-manager objects left by helm uninstall")

	// What Helm does not own stays, exactly as charts/statekeeper/README.md
	// says, and goes with the commands it gives.
	assert.Equal(t, []string{"lease/statekeeper.statekeeper.io", "secret/statekeeper-ca", "secret/statekeeper-tls"}, releaseNamespaceLeftovers(t))
	runKubectl(t.Context(), "", "--namespace", releaseNamespace, "delete", "secret", "statekeeper-ca", "statekeeper-tls").expect(t, allowed)
	runKubectl(t.Context(), "", "--namespace", releaseNamespace, "delete", "lease", "statekeeper.statekeeper.io").expect(t, allowed)
	assert.Empty(t, releaseNamespaceLeftovers(t))

	// Nothing calls statekeeper any more, and its admission policies went
	// with the release: a managed StatefulSet is stored as written. The API
	// server drops a deleted policy through its informer, a moment after
	// Helm deleted it, so the dry run is repeated until no mutation is left.
	ns := newNamespace(t, "")
	db := withoutMounts(workloads.StatefulSet("db", policy.StatefulMulti, 0))
	ns.eventuallyKubectl("a managed StatefulSet stored as written", []client.Object{db},
		[]string{"create", "--dry-run=server", "-o", "jsonpath={.spec.serviceName}", "-f", "-"},
		func(res kubectlResult) bool { return res.err == nil && res.stdout == "" })
	ns.create(db).expect(t, allowed)
	var sts appsv1.StatefulSet
	ns.get("db", &sts)
	assert.Empty(t, sts.Spec.ServiceName)
}

// installAdoptsExistingStatefulSet: a stateful-single StatefulSet created
// while statekeeper is not installed gets stamped pods and its Service once
// it is, and no rollout: its template is not touched.
func installAdoptsExistingStatefulSet(t *testing.T) {
	ns := newNamespace(t, "")
	legacy := workloads.StatefulSet("legacy", policy.StatefulSingle, 1)
	legacy.Spec.ServiceName = "legacy"
	legacy.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "sql", ContainerPort: 5432}}
	data := claim("data")
	data.Spec.StorageClassName = nil // the default class: the pod must run
	legacy.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*data}
	ns.create(legacy).expect(t, allowed)
	first := ns.eventuallyReadyPod("legacy-0", "")
	require.Empty(t, identityOf(first))
	var before appsv1.StatefulSet
	ns.eventually("statefulset legacy's status", func(ctx context.Context) (bool, string, error) {
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: ns.name, Name: "legacy"}, &before)
		return err == nil && before.Status.ObservedGeneration == before.Generation && before.Status.UpdateRevision != "",
			fmt.Sprintf("%+v", before.Status), err
	})
	require.NotContains(t, before.Spec.Template.Labels, policy.LabelDeployType)

	require.NoError(t, suite.release.install(t.Context()))

	ns.eventuallyHeadlessService("legacy", &before, []corev1.ServicePort{
		{Name: "sql", Protocol: corev1.ProtocolTCP, Port: 5432, TargetPort: intstr.FromString("sql")},
	})
	ns.kubectl(nil, "delete", "pod", "legacy-0", "--wait=false").expect(t, allowed)
	next := ns.eventuallyReadyPod("legacy-0", first.UID)
	fqdn := fmt.Sprintf("legacy-0.legacy.%s.svc.%s", ns.name, clusterDomain)
	assert.Equal(t, map[string]string{
		policy.AnnotationOrdinal:       "0",
		policy.AnnotationHostname:      "legacy-0",
		policy.AnnotationService:       "legacy",
		policy.AnnotationFQDN:          fqdn,
		policy.AnnotationPrimaryFQDN:   fqdn,
		policy.AnnotationPeers:         fqdn,
		policy.AnnotationPeersReplicas: "1",
	}, identityOf(next))

	var after appsv1.StatefulSet
	ns.get("legacy", &after)
	assert.Equal(t, before.Generation, after.Generation, "the StatefulSet's spec changed")
	assert.Equal(t, before.Spec.Template, after.Spec.Template, "the pod template changed")
	assert.Equal(t, before.Status.UpdateRevision, after.Status.UpdateRevision, "a new revision would roll the pods")
	assert.Equal(t, before.Status.UpdateRevision, next.Labels[appsv1.ControllerRevisionHashLabelKey])
}

// restoreDefaultRelease leaves the release installed with the chart's
// defaults and serving, whatever step failed, so the other tests can run.
func restoreDefaultRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	installed, err := suite.release.installed(ctx)
	if err == nil {
		if installed {
			err = suite.release.upgrade(ctx)
		} else {
			err = suite.release.install(ctx)
		}
	}
	if err != nil {
		t.Errorf("restoring the default release after a failed lifecycle step: %v", err)
	}
}

// renewalWithoutFailedAdmission has cert-manager issue the serving
// certificate again, as `cmctl renew` would, while admission requests keep
// coming: the new certificate reaches the server through its mounted Secret
// and not one request fails.
func renewalWithoutFailedAdmission(t *testing.T) {
	ctx := t.Context()
	deploy, err := suite.release.deployment(ctx)
	require.NoError(t, err)
	cert, err := servingCertificate(ctx, deploy)
	require.NoError(t, err)
	secretKey := client.ObjectKey{Namespace: releaseNamespace}
	secretKey.Name, _, _ = unstructured.NestedString(cert.Object, "spec", "secretName")
	var secret corev1.Secret
	require.NoError(t, suite.client.Get(ctx, secretKey, &secret))
	before := secret.Data["tls.crt"]

	load := startAdmissionLoad()
	require.NoError(t, renewCertificate(ctx, cert.GetName()))
	var renewed []byte
	eventually(t, "cert-manager to write a new certificate into secret "+secretKey.Name, func(ctx context.Context) (bool, string, error) {
		if err := suite.client.Get(ctx, secretKey, &secret); err != nil {
			return false, "", err
		}
		if err := suite.client.Get(ctx, client.ObjectKeyFromObject(cert), cert); err != nil {
			return false, "", err
		}
		renewed = secret.Data["tls.crt"]
		issuing, ready := certificateCondition(cert, "Issuing"), certificateCondition(cert, "Ready")
		return !bytes.Equal(renewed, before) && issuing != "True" && ready == "True",
			fmt.Sprintf("issuing %q, ready %q, certificate changed %t", issuing, ready, !bytes.Equal(renewed, before)), nil
	})
	block, _ := pem.Decode(renewed)
	require.NotNil(t, block, "secret %s: tls.crt holds no PEM certificate", secretKey.Name)
	if suite.release.local != nil {
		eventually(t, "statekeeper to serve the new certificate", func(ctx context.Context) (bool, string, error) {
			served, err := suite.release.local.servedCertificate(ctx, secret.Data["ca.crt"])
			if err != nil {
				return false, err.Error(), nil
			}
			return bytes.Equal(served, block.Bytes), "the old certificate is still served", nil
		})
	} else {
		// The kubelet refreshes a mounted Secret within about a minute; the
		// requests keep coming over that time.
		load.await(t, 900)
	}
	sent, failed := load.stop()
	t.Logf("%d admission requests while the certificate was renewed, %d failed", sent, len(failed))
	assert.Positive(t, sent)
	assert.Empty(t, failed, "admission requests that failed while the certificate was renewed")
}

// admissionLoad sends server-side dry runs of the mutation probe one after
// another, and keeps every one that did not come back mutated.
type admissionLoad struct {
	done   chan struct{}
	finish sync.WaitGroup
	mu     sync.Mutex
	sent   int
	failed []string
}

// maxLoadRequests bounds a load that is never stopped.
const maxLoadRequests = 3000

func startAdmissionLoad() *admissionLoad {
	l := &admissionLoad{done: make(chan struct{})}
	l.finish.Go(func() {
		for range maxLoadRequests {
			select {
			case <-l.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			probe := mutationProbe()
			err := suite.client.Create(ctx, probe, client.DryRunAll)
			cancel()
			if err == nil && probe.Spec.ServiceName == "" {
				err = errors.New("admitted without statekeeper's mutation")
			}
			l.mu.Lock()
			l.sent++
			if err != nil {
				l.failed = append(l.failed, err.Error())
			}
			l.mu.Unlock()
		}
	})
	return l
}

// await waits until n more requests were sent.
func (l *admissionLoad) await(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := l.sent + n
	l.mu.Unlock()
	eventually(t, fmt.Sprintf("%d more admission requests", n), func(context.Context) (bool, string, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.sent >= target, fmt.Sprintf("%d of %d sent", l.sent, target), nil
	})
}

// stop ends the load and returns how many requests were sent and why each
// failed one failed.
func (l *admissionLoad) stop() (sent int, failed []string) {
	close(l.done)
	l.finish.Wait()
	return l.sent, l.failed
}

// releaseNamespaceLeftovers lists the Secrets and Leases in the release's
// namespace as "kind/name".
func releaseNamespaceLeftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	var secrets corev1.SecretList
	require.NoError(t, suite.client.List(t.Context(), &secrets, client.InNamespace(releaseNamespace)))
	for _, s := range secrets.Items {
		left = append(left, "secret/"+s.Name)
	}
	var leases coordinationv1.LeaseList
	require.NoError(t, suite.client.List(t.Context(), &leases, client.InNamespace(releaseNamespace)))
	for _, l := range leases.Items {
		left = append(left, "lease/"+l.Name)
	}
	slices.Sort(left)
	return left
}
