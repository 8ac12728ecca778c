package integration

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestOutageBlocksOnlyWhatStatekeeperCouldDeny points the chart's webhook
// configurations at an address where nothing listens, as the API server sees
// statekeeper during an outage, and checks what the chart's selectors, match
// conditions and failure policies make of it (the table in README.md).
//
// Not parallel: Go runs it before the parallel tests resume, so no other test
// meets the outage.
func TestOutageBlocksOnlyWhatStatekeeperCouldDeny(t *testing.T) {
	enforced := newTenant(t, "")
	lenient := newTenant(t, policy.ModeWarn)
	db := workloads.StatefulSet("db", policy.StatefulMulti, 1)
	enforced.mustCreate(db)
	web := workloads.StatefulSet("web", policy.StatefulSingle, 1)
	lenient.mustCreate(web)

	stopStatekeeper(t)

	failedCalling := func(webhook string) string {
		return fmt.Sprintf("failed calling webhook %q", webhook)
	}
	t.Run("enforce namespace: a managed write is refused", func(t *testing.T) {
		sts := workloads.StatefulSet("other", policy.StatefulMulti, 1)
		assert.ErrorContains(t, enforced.in(t).create(sts, false), failedCalling(mutateWorkloads))
		enforced.in(t).assertNotStored(sts)
	})
	t.Run("enforce namespace: an unmanaged write is admitted", func(t *testing.T) {
		assert.NoError(t, enforced.in(t).create(workloads.Deployment("plain", "", 3), false))
		// statekeeper's other keys without a type do not make it managed.
		annotated := workloads.Deployment("annotated", "", 3)
		annotated.Spec.Template.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
		assert.NoError(t, enforced.in(t).create(annotated, false))
	})
	t.Run("enforce namespace: a workload labelled on its pod template only is refused", func(t *testing.T) {
		sts := podLabelled("pod-labelled", policy.StatefulMulti, 1)
		assert.ErrorContains(t, enforced.in(t).create(sts, false), failedCalling(mutateWorkloads))
		enforced.in(t).assertNotStored(sts)
	})
	t.Run("enforce namespace: removing the type of a managed workload is refused", func(t *testing.T) {
		tn := enforced.in(t)
		stored := tn.storedStatefulSet("db")
		delete(stored.Labels, policy.LabelDeployType)
		delete(stored.Spec.Template.Labels, policy.LabelDeployType)
		assert.ErrorContains(t, tn.update(stored, false), failedCalling(mutateWorkloads))
	})
	t.Run("enforce namespace: scaling to 0 or 1 is admitted, past one refused", func(t *testing.T) {
		tn := enforced.in(t)
		require.NoError(t, tn.scale(db, 0, false))
		require.NoError(t, tn.scale(db, 1, false))
		require.NoError(t, tn.scaleByUpdate(db, 1, false))
		assert.ErrorContains(t, tn.scale(db, 3, false), failedCalling(validateScaling))
	})
	t.Run("enforce namespace: an HPA of at most one replica is admitted, past one refused", func(t *testing.T) {
		tn := enforced.in(t)
		require.NoError(t, tn.create(hpa("one", "db", 1), false))
		assert.ErrorContains(t, tn.create(hpa("three", "db", 3), false), failedCalling(validateScaling))
		// autoscaling/v1 reaches the webhook converted to v2, match conditions included.
		require.NoError(t, tn.create(hpaV1("one-v1", "db", 1), false))
		assert.ErrorContains(t, tn.create(hpaV1("three-v1", "db", 3), false), failedCalling(validateScaling))
	})
	t.Run("warn namespace: nothing is blocked", func(t *testing.T) {
		tn := lenient.in(t)
		// Admitted unmutated: no claim template for the mount, so none here.
		sts := workloads.StatefulSet("db", policy.StatefulSingle, 1)
		sts.Spec.Template.Spec.Containers[0].VolumeMounts = nil
		require.NoError(t, tn.create(sts, false))
		assert.Empty(t, sts.Spec.ServiceName, "mutated with statekeeper down")
		require.NoError(t, tn.scale(web, 3, false))
		require.NoError(t, tn.create(hpa("three", "web", 3), false))
	})
	t.Run("warn namespace: the mutating admission policy still mutates", func(t *testing.T) {
		tn := lenient.in(t)
		bindMutatingPolicy(t, tn)
		sts := workloads.StatefulSet("mutated", policy.StatefulMulti, 1)
		require.NoError(t, tn.create(sts, false))
		stored := tn.storedStatefulSet("mutated")
		assert.Equal(t, mutated{ServiceName: "mutated-headless",
			TemplateLabels: withDeployTypeLabel(map[string]string{"app": "mutated"}, policy.StatefulMulti),
			ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")},
		}, mutatedOf(stored))
	})
}

// stopStatekeeper makes the API server find nothing at statekeeper's address
// until the test ends: every webhook's clientConfig points at a port where
// nothing listens. Cleanup restores the configurations and waits until
// statekeeper decides again.
func stopStatekeeper(t *testing.T) {
	t.Helper()
	c, err := client.New(shared.config, client.Options{Scheme: shared.scheme, HTTPClient: shared.httpClient, Mapper: shared.mapper})
	require.NoError(t, err)
	ctx := t.Context()

	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	require.NoError(t, c.List(ctx, &mutating))
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	require.NoError(t, c.List(ctx, &validating))
	require.NotEmpty(t, mutating.Items)
	require.NotEmpty(t, validating.Items)
	nowhere := func(cc *admissionregistrationv1.WebhookClientConfig) {
		require.NotNil(t, cc.URL, "envtest points the webhooks at a URL")
		u, err := url.Parse(*cc.URL)
		require.NoError(t, err)
		u.Host = "127.0.0.1:1"
		cc.URL = ptr.To(u.String())
	}
	// Each configuration with the client configs of its webhooks.
	configs := map[client.Object][]*admissionregistrationv1.WebhookClientConfig{}
	for i := range mutating.Items {
		for j := range mutating.Items[i].Webhooks {
			configs[&mutating.Items[i]] = append(configs[&mutating.Items[i]], &mutating.Items[i].Webhooks[j].ClientConfig)
		}
	}
	for i := range validating.Items {
		for j := range validating.Items[i].Webhooks {
			configs[&validating.Items[i]] = append(configs[&validating.Items[i]], &validating.Items[i].Webhooks[j].ClientConfig)
		}
	}
	var saved []client.Object
	for config, clientConfigs := range configs {
		saved = append(saved, config.DeepCopyObject().(client.Object))
		for _, cc := range clientConfigs {
			nowhere(cc)
		}
		require.NoError(t, c.Update(ctx, config))
	}
	t.Cleanup(func() {
		// t.Context() is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), webhookReadyTimeout)
		defer cancel()
		for _, config := range saved {
			current := config.DeepCopyObject().(client.Object)
			require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(config), current))
			config.SetResourceVersion(current.GetResourceVersion())
			require.NoError(t, c.Update(ctx, config))
		}
		require.NoError(t, waitForWebhook(ctx, "integration-after-outage"))
	})

	// The API server reads webhook configurations through an informer.
	probe := newTenant(t, "")
	probe.settle(func(bool) error {
		return probe.create(workloads.StatefulSet("probe", policy.StatefulMulti, 1), true)
	}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "failed calling webhook") })
}

// hpaV1 is hpa in autoscaling/v1, as `kubectl autoscale` writes it.
func hpaV1(name, statefulSet string, maxReplicas int32) *autoscalingv1.HorizontalPodAutoscaler {
	return &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: statefulSet},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    maxReplicas,
		},
	}
}
