//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// instanceSelector selects what the chart made for the release under test.
var instanceSelector = client.MatchingLabels{"app.kubernetes.io/instance": releaseName}

// release is the Helm release of charts/statekeeper under test, and the
// server that answers for it: the chart's Deployment on a cluster that runs
// containers, a local process otherwise.
type release struct {
	settings settings
	// local is the server process on a cluster without containers; nil
	// when the chart's Deployment serves.
	local *localServer
	// deploymentReplicas is the chart's replica count, restored by start.
	deploymentReplicas int32
}

func newRelease(s settings) (*release, error) {
	r := &release{settings: s}
	if s.local() {
		var err error
		if r.local, err = newLocalServer(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// install runs `helm install` of the chart with the given --set values and
// waits until the API server reaches statekeeper.
func (r *release) install(ctx context.Context, values ...string) error {
	args := append([]string{"install", releaseName, chartDir, "--namespace", releaseNamespace, "--create-namespace"}, r.helmValues(values)...)
	if _, err := r.helm(ctx, args...); err != nil {
		return err
	}
	return r.serve(ctx)
}

// upgrade runs `helm upgrade` with the chart's defaults plus values (not the
// previous release's), then waits until the upgraded server answers, as a
// rollout of the Deployment would replace it.
func (r *release) upgrade(ctx context.Context, values ...string) error {
	args := append([]string{"upgrade", releaseName, chartDir, "--namespace", releaseNamespace, "--reset-values"}, r.helmValues(values)...)
	if _, err := r.helm(ctx, args...); err != nil {
		return err
	}
	return r.serve(ctx)
}

// uninstall stops the local server, as deleting the Deployment would, and
// runs `helm uninstall`; stopped first, the server never runs without the
// RBAC the uninstall removes.
func (r *release) uninstall(ctx context.Context) error {
	var err error
	if r.local != nil {
		err = r.local.stop()
	}
	if _, helmErr := r.helm(ctx, "uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "2m"); helmErr != nil {
		err = errors.Join(err, helmErr)
	}
	return err
}

// installed reports whether Helm knows the release.
func (r *release) installed(ctx context.Context) (bool, error) {
	out, err := r.helm(ctx, "list", "--namespace", releaseNamespace, "--filter", "^"+releaseName+"$", "--short")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == releaseName, nil
}

// teardown removes the release if it is installed; the suite's last step.
func (r *release) teardown(ctx context.Context) error {
	installed, err := r.installed(ctx)
	if err != nil {
		return err
	}
	if !installed {
		if r.local != nil {
			return r.local.stop()
		}
		return nil
	}
	return r.uninstall(ctx)
}

// removeLeftovers uninstalls a release an interrupted run left, and refuses
// to run beside webhook configurations Helm does not own: `make run`
// registers the chart's under the same names, and two servers deciding at
// once would make every result meaningless.
func (r *release) removeLeftovers(ctx context.Context) error {
	if err := r.teardown(ctx); err != nil {
		return fmt.Errorf("removing the release an earlier run left: %w", err)
	}
	foreign, err := webhookConfigurations(ctx)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		return fmt.Errorf("statekeeper webhooks outside the release are registered: %s; remove them first (`make stop` removes the ones `make run` registers)",
			strings.Join(foreign, ", "))
	}
	return nil
}

func callsStatekeeper(webhookName string) bool {
	return strings.HasSuffix(webhookName, ".statekeeper.io")
}

// stop makes statekeeper unavailable while its webhooks stay registered:
// the local process is stopped, or the Deployment scaled to zero.
func (r *release) stop(ctx context.Context) error {
	if r.local != nil {
		return r.local.stop()
	}
	deploy, err := r.deployment(ctx)
	if err != nil {
		return err
	}
	r.deploymentReplicas = ptr.Deref(deploy.Spec.Replicas, 1)
	if res := runKubectl(ctx, "", "scale", "deployment", deploy.Name, "--namespace", releaseNamespace, "--replicas=0"); res.err != nil {
		return fmt.Errorf("scaling statekeeper to 0: %s", res)
	}
	return pollFor(ctx, "statekeeper's pods to be gone", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := suite.client.List(ctx, &pods, client.InNamespace(releaseNamespace), client.MatchingLabels(deploy.Spec.Selector.MatchLabels))
		return len(pods.Items) == 0, err
	})
}

// start undoes stop and waits until the API server reaches statekeeper again.
func (r *release) start(ctx context.Context) error {
	if r.local != nil {
		return r.serve(ctx)
	}
	deploy, err := r.deployment(ctx)
	if err != nil {
		return err
	}
	replicas := fmt.Sprintf("--replicas=%d", r.deploymentReplicas)
	if res := runKubectl(ctx, "", "scale", "deployment", deploy.Name, "--namespace", releaseNamespace, replicas); res.err != nil {
		return fmt.Errorf("scaling statekeeper back: %s", res)
	}
	return r.serve(ctx)
}

// serve brings the server of the installed release up and waits until the
// API server reaches it: the serving certificate issued and mounted, its CA
// injected into both webhook configurations, and a mutation seen. Locally
// the server is a process with the Deployment's flags and volume; on a real
// cluster the Deployment's rollout.
func (r *release) serve(ctx context.Context) error {
	deploy, err := r.deployment(ctx)
	if err != nil {
		return err
	}
	if r.local != nil {
		if err := r.local.stop(); err != nil {
			return err
		}
		if err := suite.certManager.exitedEarly(); err != nil {
			return err // nothing would issue the certificate to mount
		}
		if err := r.local.start(ctx, deploy); err != nil {
			return err
		}
	} else {
		res := runKubectl(ctx, "", "rollout", "status", "deployment/"+deploy.Name, "--namespace", releaseNamespace, "--timeout=3m")
		if res.err != nil {
			return fmt.Errorf("waiting for statekeeper's rollout: %s", res)
		}
	}
	if err := waitForTLS(ctx, deploy); err != nil {
		return err
	}
	return waitUntilMutating(ctx)
}

// deployment is the chart's Deployment of the release.
func (r *release) deployment(ctx context.Context) (*appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	if err := suite.client.List(ctx, &list, client.InNamespace(releaseNamespace), instanceSelector); err != nil {
		return nil, err
	}
	if len(list.Items) != 1 {
		return nil, fmt.Errorf("want the chart's one Deployment in namespace %s, found %d", releaseNamespace, len(list.Items))
	}
	return &list.Items[0], nil
}

// webhookConfigurations lists the names of every webhook configuration in
// the cluster that belongs to the release or calls statekeeper.
func webhookConfigurations(ctx context.Context) ([]string, error) {
	var names []string
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	if err := suite.client.List(ctx, &mutating); err != nil {
		return nil, err
	}
	for _, c := range mutating.Items {
		if c.Labels["app.kubernetes.io/instance"] == releaseName || (len(c.Webhooks) > 0 && callsStatekeeper(c.Webhooks[0].Name)) {
			names = append(names, "mutatingwebhookconfiguration/"+c.Name)
		}
	}
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := suite.client.List(ctx, &validating); err != nil {
		return nil, err
	}
	for _, c := range validating.Items {
		if c.Labels["app.kubernetes.io/instance"] == releaseName || (len(c.Webhooks) > 0 && callsStatekeeper(c.Webhooks[0].Name)) {
			names = append(names, "validatingwebhookconfiguration/"+c.Name)
		}
	}
	return names, nil
}

// certManagerObjects lists the release's Issuers and Certificates as
// "kind/name".
func certManagerObjects(ctx context.Context) ([]string, error) {
	var names []string
	for _, kind := range []string{"Issuer", "Certificate"} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: kind + "List"})
		if err := suite.client.List(ctx, list, client.InNamespace(releaseNamespace), instanceSelector); err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			names = append(names, strings.ToLower(kind)+"/"+item.GetName())
		}
	}
	return names, nil
}

// helmValues adds the image to install on a cluster that runs containers,
// or the local server's URL on one that does not.
func (r *release) helmValues(values []string) []string {
	var args []string
	if r.local != nil {
		values = append([]string{"webhook.url=" + r.local.baseURL()}, values...)
	} else {
		repo, tag := splitImage(r.settings.image)
		values = append([]string{"image.repository=" + repo, "image.tag=" + tag}, values...)
		// The chart waits for its Deployment and for cert-manager to issue
		// the serving certificate.
		args = append(args, "--wait", "--timeout", "5m")
	}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	return args
}

// splitImage splits "repo[:tag]" at the tag's colon, not a registry port's.
func splitImage(image string) (repository, tag string) {
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		return image[:colon], image[colon+1:]
	}
	return image, "latest"
}

func (r *release) helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.settings.helm, append(args, "--kubeconfig", r.settings.kubeconfig)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// dumpLog writes the end of the local server's and cert-manager's logs,
// where a failure's cause usually shows.
func (r *release) dumpLog(w io.Writer) {
	if r.local != nil {
		r.local.dumpLog(w)
	}
	if suite.certManager != nil {
		suite.certManager.dumpLog(w)
	}
}

// mutationProbe is a managed StatefulSet without a serviceName: once the API
// server calls statekeeper, a dry run of it comes back with one.
func mutationProbe() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "probe",
			Namespace: probeNamespace,
			Labels:    map[string]string{"app": "probe", policy.LabelDeployType: string(policy.StatefulMulti)},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: workloads.Image}}},
			},
		},
	}
}

// waitUntilMutating polls a server-side dry run (safe: the webhooks have no
// side effects) until statekeeper's mutation shows: the API server loads
// webhook configurations a moment after they are stored, and a new server
// answers only once its caches have synced.
func waitUntilMutating(ctx context.Context) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		probe := mutationProbe()
		lastErr = suite.client.Create(ctx, probe, client.DryRunAll)
		if lastErr == nil && probe.Spec.ServiceName == "" {
			lastErr = errors.New("admitted without statekeeper's mutation")
		}
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not reach statekeeper: %w (last dry run: %v)", err, lastErr)
	}
	return nil
}
