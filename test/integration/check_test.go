package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/statekeeper/statekeeper/internal/check"
	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestCheckDecidesAsTheServer runs the same objects through `statekeeper
// check` and through the real API server with the chart's webhooks, created
// in Helm's install order (check's order: Deployments, HPAs, StatefulSets),
// and requires the same denials and warnings for each: every rule an object
// breaks at once, the HPA created before its single-instance target, the
// kind switch of an unlabelled workload. The one difference is by design:
// the server warns that the HPA's target does not exist yet, which check,
// seeing the target further on, leaves out for the denial of the pair.
func TestCheckDecidesAsTheServer(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")

	ledger := workloads.StatefulSet("ledger", policy.StatelessSingle, 2)
	ledger.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
	autoscaled := hpa("db", "db", 3)
	web := withClaimVolume(workloads.Deployment("web", policy.StatelessSingle, 1), "web-data")
	objects := []client.Object{
		web,
		workloads.Deployment("api", policy.StatelessSingle, 3),
		autoscaled,
		ledger,
		workloads.StatefulSet("db", policy.StatefulSingle, 1),
		unlabelledStatefulSet("web"),
		workloads.StatefulSet("cache", policy.StatefulMulti, 3),
	}

	expected := checkLines(t, tn.ns, objects)
	for _, v := range policy.ValidateHPAWithoutTarget(autoscaled.Name, policy.KindStatefulSet, "db", autoscaled.Spec.MaxReplicas).Warnings {
		ref := refOf(t, autoscaled, tn.ns)
		expected[ref] = append(expected[ref], "warning "+ref+": "+v.String())
	}
	for _, obj := range objects {
		ref := refOf(t, obj, tn.ns)
		want := expected[ref]
		// The server's rules read caches that lag the previous writes: its
		// dry run is retried until it agrees, then the real call must.
		var got []string
		ok := assert.Eventually(t, func() bool {
			got = tn.decide(obj, ref, true)
			return assert.ObjectsAreEqual(want, got)
		}, settleTimeout, settlePoll)
		require.True(t, ok, "%s: check says %q, the server %q", ref, want, got)
		assert.Equal(t, want, tn.decide(obj, ref, false), ref)
	}
	assert.NotEmpty(t, expected[refOf(t, ledger, tn.ns)], "the example denials are there")
}

// decide creates obj and returns the server's answer as check's lines: one
// per denial and warning, nothing for a silent admission.
func (tn *tenant) decide(obj client.Object, ref string, dryRun bool) []string {
	tn.warnings.take()
	err := tn.create(obj.DeepCopyObject().(client.Object), dryRun)
	var lines []string
	if err != nil {
		var apiErr apierrors.APIStatus
		if !errors.As(err, &apiErr) || apiErr.Status().Details == nil {
			return []string{"error " + ref + ": " + err.Error()}
		}
		for _, c := range apiErr.Status().Details.Causes {
			lines = append(lines, "denied "+ref+": "+strings.TrimPrefix(c.Message, "Forbidden: "))
		}
	}
	for _, w := range tn.warnings.take() {
		lines = append(lines, "warning "+ref+": "+w)
	}
	return lines
}

// checkLines runs check on the objects in namespace and returns its denial
// and warning lines by object.
func checkLines(t *testing.T, namespace string, objects []client.Object) map[string][]string {
	var input bytes.Buffer
	for _, obj := range objects {
		obj = obj.DeepCopyObject().(client.Object)
		gvk, err := apiutil.GVKForObject(obj, shared.scheme)
		require.NoError(t, err)
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		obj.SetNamespace(namespace)
		js, err := json.Marshal(obj)
		require.NoError(t, err)
		input.WriteString("---\n")
		input.Write(js)
		input.WriteString("\n")
	}
	var stdout, stderr bytes.Buffer
	code := check.Run(t.Context(), check.Options{Paths: []string{check.Stdin}, Namespace: namespace,
		Settings: review.SettingsFrom(config.Default())}, &input, &stdout, &stderr)
	require.NotEqual(t, check.ExitInvalid, code, stderr.String())
	lines := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		verdict, rest, _ := strings.Cut(line, " ")
		ref, _, _ := strings.Cut(rest, ":")
		if verdict != "allowed" {
			lines[ref] = append(lines[ref], line)
		}
	}
	return lines
}

func refOf(t *testing.T, obj client.Object, namespace string) string {
	gvk, err := apiutil.GVKForObject(obj, shared.scheme)
	require.NoError(t, err)
	return fmt.Sprintf("%s/%s/%s", gvk.Kind, namespace, obj.GetName())
}
