package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/policy"
)

func TestRenderAudit(t *testing.T) {
	obj := audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u1"}
	clean := audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "api", UID: "u2"}
	audits := []audit.NamespaceAudit{{
		Namespace: "shop",
		Audited:   []audit.Object{clean, obj},
		Findings: []audit.Finding{
			{Object: obj, Rule: policy.RuleSingleInstance, Result: audit.Fail, Field: "spec.replicas", Message: `deployment "web" is stateless-single: replicas must be 0 or 1, got 3`},
			{Object: obj, Rule: policy.RuleSharedClaim, Result: audit.Warn, Message: `deployment "web" shares & "claims"`},
		},
	}}
	assert.True(t, auditFailed(audits))
	assert.False(t, auditFailed([]audit.NamespaceAudit{{Namespace: "shop", Audited: []audit.Object{clean}}}))

	var table bytes.Buffer
	require.NoError(t, renderAudit(&table, auditOutputTable, audits))
	assert.Equal(t, strings.Join([]string{
		"NAMESPACE  KIND        NAME  RULE             RESULT  MESSAGE",
		`shop       Deployment  web   single-instance  fail    deployment "web" is stateless-single: replicas must be 0 or 1, got 3`,
		`shop       Deployment  web   shared-claim     warn    deployment "web" shares & "claims"`,
		"2 objects audited in 1 namespaces, 2 findings",
		""}, "\n"), table.String())

	var js bytes.Buffer
	require.NoError(t, renderAudit(&js, auditOutputJSON, audits))
	var decoded struct {
		Namespaces []audit.NamespaceAudit `json:"namespaces"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	assert.Equal(t, audits, decoded.Namespaces)

	var junit bytes.Buffer
	require.NoError(t, renderAudit(&junit, auditOutputJUnit, audits))
	assert.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="statekeeper audit" tests="2" failures="1">
  <testsuite name="shop" tests="2" failures="1">
    <testcase classname="shop" name="Deployment/api"></testcase>
    <testcase classname="shop" name="Deployment/web">
      <failure type="single-instance" message="deployment &#34;web&#34; is stateless-single: replicas must be 0 or 1, got 3 [single-instance]">deployment &#34;web&#34; is stateless-single: replicas must be 0 or 1, got 3 [single-instance]</failure>
      <system-out>warning: deployment &#34;web&#34; shares &amp; &#34;claims&#34; [shared-claim]</system-out>
    </testcase>
  </testsuite>
</testsuites>
`, junit.String())

	assert.EqualError(t, renderAudit(&junit, "yaml", audits), `unknown output format "yaml"`)
}
