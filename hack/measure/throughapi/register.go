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
// hack/run.sh renders them (webhook.url at a local process), and, rendered
// with the admission policy, its ValidatingAdmissionPolicy and bindings.
type registrations struct {
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
	policy     *admissionregistrationv1.ValidatingAdmissionPolicy
	bindings   []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
}

// policyAPI is the API version whose presence makes the chart render its
// admission policy, and the webhooks' match conditions that leave to it
// the updates that need no lookup.
const policyAPI = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"

func render(helm, chart, certDir string, withPolicy bool) (registrations, error) {
	ca, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return registrations{}, err
	}
	// The chart excludes its release namespace from review; the measured
	// namespace is another one.
	args := []string{"template", "statekeeper", chart,
		"--namespace", "statekeeper",
		"--set", "tls.mode=secret",
		"--set", "webhook.url=" + renderedHost,
		"--set", "webhook.caBundle=" + base64.StdEncoding.EncodeToString(ca),
		"--show-only", "templates/mutatingwebhookconfiguration.yaml",
		"--show-only", "templates/validatingwebhookconfiguration.yaml"}
	if withPolicy {
		args = append(args, "--api-versions", policyAPI, "--show-only", "templates/validatingadmissionpolicy.yaml")
	}
	out, err := exec.Command(helm, args...).Output()
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
		case bytes.Contains(doc, []byte("kind: ValidatingAdmissionPolicyBinding")):
			b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			err = yaml.UnmarshalStrict(doc, b)
			r.bindings = append(r.bindings, b)
		case bytes.Contains(doc, []byte("kind: ValidatingAdmissionPolicy")):
			r.policy = &admissionregistrationv1.ValidatingAdmissionPolicy{}
			err = yaml.UnmarshalStrict(doc, r.policy)
		}
		if err != nil {
			return registrations{}, err
		}
	}
	if r.mutating == nil || r.validating == nil || withPolicy && (r.policy == nil || len(r.bindings) == 0) {
		return registrations{}, fmt.Errorf("helm template rendered no webhook configurations or, asked for, no admission policy:\n%s", out)
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
	if _, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		return err
	}
	if r.policy == nil {
		return nil
	}
	if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, r.policy.DeepCopy(), metav1.CreateOptions{}); err != nil {
		return err
	}
	for _, b := range r.bindings {
		if _, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, b.DeepCopy(), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
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
	for _, b := range r.bindings {
		err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if r.policy != nil {
		err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, r.policy.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// waitPolicyActs waits until the admission policy denies a managed
// Deployment's second instance: the API server loads policies through a
// watch, a moment after they are stored. The policy runs before the
// validating webhooks, so its denial is the one returned.
func waitPolicyActs(ctx context.Context, kube kubernetes.Interface, namespace string) error {
	d := deployment("policy-probe", 2)
	d.Labels["statekeeper.io/deploy-type"] = "stateless-single"
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kube.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy"), nil
	})
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
