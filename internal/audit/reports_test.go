package audit

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/policy"
)

func object(i int) Object {
	return Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: fmt.Sprintf("web-%04d", i), UID: types.UID(fmt.Sprintf("uid-%04d", i))}
}

func TestReportsNothingAudited(t *testing.T) {
	assert.Nil(t, Reports(NamespaceAudit{Namespace: "shop"}, nil, time.Now(), 0))
}

func TestReportsWarnAndFail(t *testing.T) {
	web, api := object(1), object(2)
	now := time.Unix(1_700_000_000, 500)
	got := Reports(NamespaceAudit{
		Namespace: "shop", Audited: []Object{web, api},
		Findings: []Finding{
			{Object: web, Rule: policy.RuleQuorum, Result: Fail, Field: "spec.replicas", Message: "even"},
			{Object: web, Rule: policy.RuleSharedClaim, Result: Warn, Message: "shared"},
		},
	}, FirstFound{{UID: web.UID, Rule: policy.RuleSharedClaim}: {Seconds: 42}}, now, 0)
	ref := []corev1.ObjectReference{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web-0001", UID: "uid-0001"}}
	assert.Equal(t, []PolicyReport{{
		TypeMeta:   metav1.TypeMeta{APIVersion: "wgpolicyk8s.io/v1alpha2", Kind: "PolicyReport"},
		ObjectMeta: metav1.ObjectMeta{Name: "statekeeper", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/managed-by": "statekeeper"}},
		Summary:    ReportSummary{Pass: 1, Fail: 1, Warn: 1},
		Results: []ReportResult{
			{Source: "statekeeper", Policy: "statekeeper", Rule: "quorum", Severity: "high", Timestamp: metav1.Timestamp{Seconds: now.Unix()},
				Result: "fail", Scored: true, Resources: ref, Message: "even", Properties: map[string]string{"field": "spec.replicas"}},
			{Source: "statekeeper", Policy: "statekeeper", Rule: "shared-claim", Severity: "medium", Timestamp: metav1.Timestamp{Seconds: 42},
				Result: "warn", Scored: true, Resources: ref, Message: "shared"},
		},
	}}, got)
}

// 5,000 broken workloads in one namespace: shards of at most maxResults,
// each under a size far below etcd's object limit, every finding once.
func TestReportsBoundsReportSize(t *testing.T) {
	a := NamespaceAudit{Namespace: "shop"}
	for i := range 5000 {
		o := object(i)
		a.Audited = append(a.Audited, o)
		a.Findings = append(a.Findings, Finding{Object: o, Rule: policy.RuleSingleInstance, Result: Fail, Field: "spec.replicas",
			Message: fmt.Sprintf(`deployment %q is stateless-single: replicas must be 0 or 1, got 3`, o.Name)})
	}
	reports := Reports(a, nil, time.Now(), DefaultMaxReportResults)
	require.Greater(t, len(reports), 1)
	seen := map[types.UID]bool{}
	for _, r := range reports {
		assert.LessOrEqual(t, len(r.Results), DefaultMaxReportResults)
		size, err := sizeOf(r)
		require.NoError(t, err)
		assert.Less(t, size, 1<<20, "report %s is %d bytes", r.Name, size)
		for _, res := range r.Results {
			assert.False(t, seen[res.Resources[0].UID])
			seen[res.Resources[0].UID] = true
		}
	}
	assert.Len(t, seen, 5000)
}

// sizeOf is the JSON size of a report, as the API server stores it.
func sizeOf(r PolicyReport) (int, error) {
	b, err := json.Marshal(r)
	return len(b), err
}
