//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/test/podproc"
)

// certManager is cert-manager's issuance and CA injection (hack/certmanager)
// run as a local process on a cluster that runs no containers; on kind
// cert-manager runs from its release manifest instead.
type certManager struct {
	process
	binary string
}

func newCertManager(s settings) *certManager {
	return &certManager{
		process: process{name: "cert-manager", logPath: filepath.Join(s.workDir, "cert-manager.log")},
		binary:  s.certManager,
	}
}

// start runs cert-manager with the cluster's own (administrator) kubeconfig,
// as its Deployments run with the broad RBAC of its chart.
func (c *certManager) start() error {
	if err := c.freshLog(); err != nil {
		return err
	}
	return c.process.start(c.binary, []string{"--kubeconfig", suite.settings.kubeconfig}, nil)
}

var (
	certificateGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}
	// servingVolume is the chart's volume of the serving certificate.
	servingVolume = "serving-certs"
)

// servingSecret names the Secret the chart's Deployment mounts as its
// serving certificate, and the directory it is mounted at.
func servingSecret(deploy *appsv1.Deployment) (secret *corev1.SecretVolumeSource, mountPath string, err error) {
	container, err := podproc.Container(deploy, chartContainer)
	if err != nil {
		return nil, "", err
	}
	for _, m := range container.VolumeMounts {
		if m.Name == servingVolume {
			mountPath = m.MountPath
		}
	}
	for _, v := range deploy.Spec.Template.Spec.Volumes {
		if v.Name == servingVolume && v.Secret != nil && mountPath != "" {
			return v.Secret, mountPath, nil
		}
	}
	return nil, "", fmt.Errorf("deployment %s mounts no secret volume %q", deploy.Name, servingVolume)
}

// servingCertificate is the release's cert-manager Certificate that writes
// the Secret the Deployment mounts.
func servingCertificate(ctx context.Context, deploy *appsv1.Deployment) (*unstructured.Unstructured, error) {
	secret, _, err := servingSecret(deploy)
	if err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(certificateGVK.GroupVersion().WithKind("CertificateList"))
	if err := suite.client.List(ctx, list, client.InNamespace(releaseNamespace), instanceSelector); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if name, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "secretName"); name == secret.SecretName {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no Certificate of the release writes secret %s", secret.SecretName)
}

// certificateCondition is the status of a Certificate's condition.
func certificateCondition(cert *unstructured.Unstructured, conditionType string) string {
	conditions, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == conditionType {
			status, _ := m["status"].(string)
			return status
		}
	}
	return ""
}

// waitForTLS waits, on every cluster the same way, until cert-manager has
// issued the serving certificate the Deployment mounts and its CA injector
// has written the certificate's CA into every webhook of both
// configurations.
func waitForTLS(ctx context.Context, deploy *appsv1.Deployment) error {
	var why string
	err := pollFor(ctx, "the serving certificate and its CA in both webhook configurations", waitTimeout, func(ctx context.Context) (bool, error) {
		if suite.certManager != nil {
			if err := suite.certManager.exitedEarly(); err != nil {
				return false, err
			}
		}
		var err error
		why, err = tlsNotReady(ctx, deploy)
		return why == "", err
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, why)
	}
	return nil
}

// tlsNotReady says what waitForTLS still waits for, or nothing.
func tlsNotReady(ctx context.Context, deploy *appsv1.Deployment) (string, error) {
	cert, err := servingCertificate(ctx, deploy)
	if err != nil {
		return "", err
	}
	if status := certificateCondition(cert, "Ready"); status != "True" {
		return fmt.Sprintf("certificate %s is not Ready (%q)", cert.GetName(), status), nil
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	var secret corev1.Secret
	if err := suite.client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: secretName}, &secret); err != nil {
		return fmt.Sprintf("secret %s: %v", secretName, err), nil
	}
	ca := secret.Data["ca.crt"]
	if len(ca) == 0 {
		return fmt.Sprintf("secret %s has no ca.crt", secretName), nil
	}
	bundles, err := webhookCABundles(ctx)
	if err != nil {
		return "", err
	}
	for webhook, bundle := range bundles {
		if !bytes.Equal(bundle, ca) {
			return fmt.Sprintf("%s does not have the CA of secret %s yet", webhook, secretName), nil
		}
	}
	return "", nil
}

// webhookCABundles are the CA bundles of every webhook of the release's
// two configurations, by "configuration/webhook".
func webhookCABundles(ctx context.Context) (map[string][]byte, error) {
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	if err := suite.client.List(ctx, &mutating, instanceSelector); err != nil {
		return nil, err
	}
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := suite.client.List(ctx, &validating, instanceSelector); err != nil {
		return nil, err
	}
	if len(mutating.Items) != 1 || len(validating.Items) != 1 {
		return nil, fmt.Errorf("want the chart's mutating and validating webhook configurations, found %d and %d", len(mutating.Items), len(validating.Items))
	}
	bundles := map[string][]byte{}
	for _, w := range mutating.Items[0].Webhooks {
		bundles["mutatingwebhookconfiguration/"+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range validating.Items[0].Webhooks {
		bundles["validatingwebhookconfiguration/"+w.Name] = w.ClientConfig.CABundle
	}
	return bundles, nil
}

// renewCertificate asks cert-manager to issue the Certificate again now, as
// `cmctl renew` does: an Issuing condition, set on its status.
func renewCertificate(ctx context.Context, name string) error {
	cert := &unstructured.Unstructured{}
	cert.SetGroupVersionKind(certificateGVK)
	if err := suite.client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: name}, cert); err != nil {
		return err
	}
	if certificateCondition(cert, "Issuing") == "True" {
		return errors.New("certificate " + name + " is already being issued")
	}
	conditions, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	conditions = append(conditions, map[string]any{
		"type":               "Issuing",
		"status":             "True",
		"reason":             "ManuallyTriggered",
		"message":            "Certificate re-issuance manually triggered",
		"lastTransitionTime": metav1.NewTime(time.Now()).UTC().Format(time.RFC3339),
		"observedGeneration": cert.GetGeneration(),
	})
	if err := unstructured.SetNestedSlice(cert.Object, conditions, "status", "conditions"); err != nil {
		return err
	}
	return suite.client.Status().Update(ctx, cert)
}
