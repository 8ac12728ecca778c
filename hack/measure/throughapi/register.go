package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

var metaReview = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}

// renderedHost is the webhook.url the chart is rendered with; each variant
// replaces it with its own server's.
const renderedHost = "https://127.0.0.1:1"

// registrations are the chart's webhook configurations, rendered as
// hack/run.sh renders them (webhook.url at a local process).
type registrations struct {
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
}

func render(helm, chart, certDir string) (registrations, error) {
	ca, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return registrations{}, err
	}
	// The chart excludes its release namespace from review; the measured
	// namespace is another one.
	out, err := exec.Command(helm, "template", "statekeeper", chart,
		"--namespace", "statekeeper",
		"--set", "tls.mode=secret",
		"--set", "webhook.url="+renderedHost,
		"--set", "webhook.caBundle="+base64.StdEncoding.EncodeToString(ca),
		"--show-only", "templates/mutatingwebhookconfiguration.yaml",
		"--show-only", "templates/validatingwebhookconfiguration.yaml").Output()
	if err != nil {
		return registrations{}, fmt.Errorf("helm template: %w", err)
	}
	var r registrations
	for _, doc := range bytes.Split(out, []byte("\n---")) {
		switch {
		case bytes.Contains(doc, []byte("kind: MutatingWebhookConfiguration")):
			r.mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			err = yaml.UnmarshalStrict(doc, r.mutating)
		case bytes.Contains(doc, []byte("kind: ValidatingWebhookConfiguration")):
			r.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			err = yaml.UnmarshalStrict(doc, r.validating)
		}
		if err != nil {
			return registrations{}, err
		}
	}
	if r.mutating == nil || r.validating == nil {
		return registrations{}, fmt.Errorf("helm template rendered no webhook configurations:\n%s", out)
	}
	return r, nil
}

// register points the chart's configurations at base (https://host:port),
// replacing whatever configurations of the same names exist.
func (r registrations) register(ctx context.Context, kube kubernetes.Interface, base string) error {
	if err := r.unregister(ctx, kube); err != nil {
		return err
	}
	m, v := r.mutating.DeepCopy(), r.validating.DeepCopy()
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.URL = at(base, m.Webhooks[i].ClientConfig.URL)
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.URL = at(base, v.Webhooks[i].ClientConfig.URL)
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{})
	return err
}

func at(base string, url *string) *string {
	s := base + strings.TrimPrefix(*url, renderedHost)
	return &s
}

func (r registrations) unregister(ctx context.Context, kube kubernetes.Interface) error {
	err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, r.mutating.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	err = kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, r.validating.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// probe is a managed Deployment written with a server-side dry run: it
// reaches /mutate and /validate of whichever server is registered, and
// stores nothing.
func probe(ctx context.Context, kube kubernetes.Interface, namespace string) error {
	d := deployment("probe", 2)
	_, err := kube.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// waitServed waits until the API server calls s (its request count grows
// over a probe) or, with gone, no longer calls it: the API server loads
// webhook configurations through a watch, a moment after they are stored.
func waitServed(ctx context.Context, kube kubernetes.Interface, namespace string, s *server, gone bool) error {
	stable := 0
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		before, err := s.admissions(ctx)
		if err != nil {
			return false, err
		}
		if err := probe(ctx, kube, namespace); err != nil && !gone {
			return false, nil // registered, not yet reached
		}
		after, err := s.admissions(ctx)
		if err != nil {
			return false, err
		}
		if !gone {
			return after > before, nil
		}
		// Gone once two probes in a row did not reach it.
		if after == before {
			stable++
		} else {
			stable = 0
		}
		return stable >= 2, nil
	})
}

// deployment is a managed stateless-multi Deployment, paused so that the
// controller manager makes no ReplicaSet or pods of it: the writes measured
// are the Deployment's own.
func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name, "statekeeper.io/deploy-type": "stateless-multi"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Paused:   true,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels),
		},
	}
	return d
}
