package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/admissionpolicy"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// policyProbe verifies once, at start, that the admission policy acts: a
// server-side dry run of a Deployment that the policy must deny. The API
// server runs the policy before any validating webhook, and words its
// denial "ValidatingAdmissionPolicy '<policy>' with binding '<binding>'
// denied request: <message>", so the answer tells the policy's denial from
// any other. Without it (the API server does not serve or runs no admission
// policies, the policy or its probe binding is missing), the lookup-free
// rules hold only while the webhook answers, and the workload entries' match
// conditions send it no UPDATE the policy was to decide.
type policyProbe struct {
	client    client.Client
	namespace string
	active    prometheus.Gauge
	log       logr.Logger
	// verified is set once the probe has an answer, whichever.
	verified atomic.Bool
}

// probeDeployment is what the probe asks the API server to create: a
// single-instance Deployment at two replicas, which single-instance denies.
func probeDeployment(namespace string) *appsv1.Deployment {
	labels := map[string]string{
		policy.LabelDeployType:        string(policy.StatelessSingle),
		"app.kubernetes.io/component": admissionpolicy.ProbeComponent,
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "statekeeper-" + admissionpolicy.ProbeComponent, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

// policyLoadGrace is how long an admitted probe is tried again before it
// counts: the API server loads policies and bindings through a watch, so
// one installed with statekeeper (helm install) may act a moment later.
const policyLoadGrace = 30 * time.Second

// Start probes until the API server answers, then reports and returns.
func (p *policyProbe) Start(ctx context.Context) error {
	delay := time.Second
	started := time.Now()
	for {
		acts, reason, err := p.probe(ctx)
		if err == nil && (acts || time.Since(started) >= policyLoadGrace) {
			p.report(acts, reason)
			return nil
		}
		if err == nil {
			err = errors.New(reason)
		}
		p.log.V(1).Info("admission policy probe failed, retrying", "error", err.Error(), "in", delay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// NeedLeaderElection is false: every replica reports its own view.
func (p *policyProbe) NeedLeaderElection() bool { return false }

func (p *policyProbe) probe(ctx context.Context) (acts bool, reason string, err error) {
	return VerifyAdmissionPolicies(ctx, p.client, p.namespace)
}

// VerifyAdmissionPolicies runs the probe's dry run in namespace: acts is
// whether the policy denied it; otherwise reason says what happened
// instead. err is a failure to get an answer at all (the API server
// unreachable or overloaded), which is worth a retry.
func VerifyAdmissionPolicies(ctx context.Context, c client.Client, namespace string) (acts bool, reason string, err error) {
	d := probeDeployment(namespace)
	want := policy.ValidateWorkload(policy.WorkloadRequest{Operation: policy.OpCreate, Object: policy.FromDeployment(d)}).Denials[0].String()
	err = c.Create(ctx, d, client.DryRunAll)
	if err == nil {
		return false, "a server-side dry run the policy must deny was admitted: the API server runs no admission policies, or the policy or its probe binding is missing", nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false, "", err
	}
	for _, c := range causesOf(status.Status()) {
		if strings.HasPrefix(c, "ValidatingAdmissionPolicy ") && strings.HasSuffix(c, "denied request: "+want) {
			return true, "", nil
		}
	}
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) {
		return false, "", err
	}
	return false, fmt.Sprintf("a server-side dry run the policy must deny was refused otherwise: %v", err), nil
}

func causesOf(s metav1.Status) []string {
	if s.Details == nil {
		return nil
	}
	out := make([]string, len(s.Details.Causes))
	for i, c := range s.Details.Causes {
		out[i] = c.Message
	}
	return out
}

func (p *policyProbe) report(acts bool, reason string) {
	if acts {
		p.active.Set(1)
		p.log.Info("admission policies act: the rules that need no lookup hold without the webhook")
	} else {
		p.active.Set(0)
		p.log.Info("admission policies do not act: the rules that need no lookup hold only while the webhook answers, and updates of managed workloads the policy was to decide are not checked", "reason", reason)
	}
	p.verified.Store(true)
}

// readyz fails until the probe has an answer: readiness then says the
// verification ran; what it found is in the metric and the log.
func (p *policyProbe) readyz(*http.Request) error {
	if !p.verified.Load() {
		return errors.New("the admission policies are not verified yet")
	}
	return nil
}
