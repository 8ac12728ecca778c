//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// reported is a finding as the reports and the CLI both show it.
type reported struct {
	Kind, Name string
	Rule       policy.Rule
	Result     string
	Message    string
}

// auditNamespace is the audit-mode namespace whose violations were stored
// while statekeeper was not installed (storeViolations), for the lifecycle
// step after the fresh install (auditReportsStoredViolations).
var auditNamespace *namespace

// storeViolations creates, with statekeeper uninstalled, an object for each
// rule the audit must find, in a namespace in audit mode (statekeeper admits
// everything there and creates no Service, so every finding stays until the
// test fixes it). parent owns the namespace, so it outlives this step.
func storeViolations(parent *testing.T) func(t *testing.T) {
	return func(t *testing.T) {
		auditNamespace = newNamespace(parent, policy.ModeAudit).in(t)
		objects, _ := workloads.AuditCases()
		for _, obj := range objects {
			obj.SetNamespace(auditNamespace.name)
			require.NoError(t, suite.client.Create(t.Context(), obj), "creating %T %s", obj, obj.GetName())
		}
	}
}

// auditReportsStoredViolations: once installed, statekeeper's background
// audit reports what was stored without it; fixing an object clears its
// result, deleting one removes it, a violation admitted in audit mode
// appears, and `statekeeper audit` says what the reports say.
func auditReportsStoredViolations(t *testing.T) {
	ns := auditNamespace.in(t)
	_, cases := workloads.AuditCases()
	var want []reported
	for _, c := range cases {
		want = append(want, reported{Kind: c.Kind, Name: c.Name, Rule: c.Rule, Result: c.Result})
	}
	got := ns.eventuallyReported("every stored violation", want)
	assert.Equal(t, got, ns.cliFindings(), "statekeeper audit disagrees with the reports")

	// One Warning Event per finding on the offending object, reason = rule.
	ns.eventually("the single-instance event on deployment single-web", func(ctx context.Context) (bool, string, error) {
		var events eventsv1.EventList
		if err := suite.client.List(ctx, &events, client.InNamespace(ns.name)); err != nil {
			return false, "", err
		}
		var seen []string
		for _, e := range events.Items {
			seen = append(seen, fmt.Sprintf("%s %s/%s %s", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason))
		}
		return slices.Contains(seen, "Warning Deployment/single-web single-instance"), fmt.Sprint(seen), nil
	})

	// Fixed: single-web scaled to one replica.
	var web appsv1.Deployment
	ns.get("single-web", &web)
	web.Spec.Replicas = new(int32(1))
	require.NoError(t, suite.client.Update(t.Context(), &web))
	want = slices.DeleteFunc(want, func(r reported) bool { return r.Kind == "Deployment" && r.Name == "single-web" })
	ns.eventuallyReported("single-web's result gone once fixed", want)

	// Deleted: the HPA of single-db.
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	ns.get("single-db", hpa)
	require.NoError(t, suite.client.Delete(t.Context(), hpa))
	want = slices.DeleteFunc(want, func(r reported) bool { return r.Kind == "HorizontalPodAutoscaler" })
	ns.eventuallyReported("the deleted HPA's result gone", want)

	// Audit mode admits a violation silently, and the audit records it.
	ns.create(workloads.Deployment("late", policy.StatelessSingle, 2)).expect(t, allowed)
	want = append(want, reported{Kind: "Deployment", Name: "late", Rule: policy.RuleSingleInstance, Result: "fail"})
	got = ns.eventuallyReported("the violation admitted in audit mode", want)
	assert.Equal(t, got, ns.cliFindings(), "statekeeper audit disagrees with the reports")
}

// eventuallyReported waits until the namespace's reports hold exactly want
// (compared without messages) and returns them with their messages.
func (n *namespace) eventuallyReported(what string, want []reported) []reported {
	n.t.Helper()
	var got []reported
	n.eventually(what, func(ctx context.Context) (bool, string, error) {
		stored, err := audit.ReportWriter{Client: suite.client}.Stored(ctx, n.name)
		if err != nil {
			return false, "", err
		}
		got = nil
		for _, r := range stored {
			for _, res := range r.Results {
				require.Len(n.t, res.Resources, 1)
				got = append(got, reported{Kind: res.Resources[0].Kind, Name: res.Resources[0].Name,
					Rule: policy.Rule(res.Rule), Result: res.Result, Message: res.Message})
			}
		}
		sortReported(got)
		return sameFindings(got, want), fmt.Sprintf("%+v", got), nil
	})
	return got
}

// cliFindings runs `statekeeper audit -o json` on the namespace.
func (n *namespace) cliFindings() []reported {
	n.t.Helper()
	require.NotEmpty(n.t, suite.settings.statekeeper, "STATEKEEPER must name the statekeeper binary")
	cmd := exec.CommandContext(n.t.Context(), suite.settings.statekeeper, "audit", "-o", "json",
		"--kubeconfig", suite.settings.kubeconfig, "--namespace", n.name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(n.t, err, &exit, "statekeeper audit must exit 1 on failing findings: %s", stderr.String())
	require.Equal(n.t, 1, exit.ExitCode(), stderr.String())
	var doc struct {
		Namespaces []audit.NamespaceAudit `json:"namespaces"`
	}
	require.NoError(n.t, json.Unmarshal(stdout.Bytes(), &doc), stdout.String())
	var out []reported
	for _, a := range doc.Namespaces {
		for _, f := range a.Findings {
			out = append(out, reported{Kind: f.Object.Kind, Name: f.Object.Name, Rule: f.Rule, Result: string(f.Result), Message: f.Message})
		}
	}
	sortReported(out)
	return out
}

func sortReported(rs []reported) {
	slices.SortFunc(rs, func(a, b reported) int {
		return strings.Compare(a.Kind+"/"+a.Name+"/"+string(a.Rule), b.Kind+"/"+b.Name+"/"+string(b.Rule))
	})
}

// sameFindings compares findings without their messages.
func sameFindings(got, want []reported) bool {
	strip := func(rs []reported) []reported {
		out := make([]reported, len(rs))
		for i, r := range rs {
			r.Message = ""
			out[i] = r
		}
		sortReported(out)
		return out
	}
	return slices.Equal(strip(got), strip(want))
}
