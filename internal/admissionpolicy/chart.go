// Package admissionpolicy renders the rules the catalog marks CEL-decidable
// (policy.CELValidations) as the chart's ValidatingAdmissionPolicy and its
// bindings: a Helm template generated, never hand-written, and tested
// against the chart so that the two cannot drift. It holds no rule of its
// own; the CEL lives beside the Go rules in internal/policy, which stays free
// of Helm and YAML.
package admissionpolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// TemplatePath is where the chart keeps the generated template, relative to
// the repository root.
const TemplatePath = "charts/statekeeper/templates/validatingadmissionpolicy.yaml"

// Binding is one binding of the policy: the namespaces of a mode and what
// the API server does with a failed validation there (docs/spec.md §6).
type Binding struct {
	// Suffix names the binding (<fullname>-<suffix>).
	Suffix string
	// Actions are the binding's validationActions.
	Actions string
	// Selector is the mode part of its namespaceSelector, Helm template text
	// of matchExpressions items.
	Selector string
	// Condition, when set, is the Helm condition under which it is rendered.
	Condition string
}

// Bindings: enforce and unknown modes deny (an unknown mode is enforced),
// audit records in the API server's audit log, and unlabelled namespaces
// take the default mode's action (with enforce, the enforce binding already
// has them). warn has none: the webhook warns of every violation there, and
// a policy's Warn would repeat each lookup-free one in a second warning
// (an outage costs a warn namespace only its warnings, its entries failing
// open). off has none.
var Bindings = []Binding{
	{Suffix: "enforce", Actions: "[Deny]", Selector: `        - key: statekeeper.io/mode
          operator: NotIn
          values: ["warn", "audit", "off"]
        {{- if ne .Values.config.defaultMode "enforce" }}
        - key: statekeeper.io/mode
          operator: Exists
        {{- end }}
`},
	{Suffix: "audit", Actions: "[Audit]", Selector: `        - key: statekeeper.io/mode
          operator: In
          values: ["audit"]
`},
	{Suffix: "default", Actions: "[Audit]", Condition: `eq .Values.config.defaultMode "audit"`, Selector: `        - key: statekeeper.io/mode
          operator: DoesNotExist
`},
}

// ChartTemplate is the chart's validatingadmissionpolicy.yaml.
func ChartTemplate() string {
	var b strings.Builder
	b.WriteString(`{{- /*
Generated from internal/policy/cel.go by internal/admissionpolicy: do not edit;
go test ./internal/admissionpolicy -update rewrites it.
The rules that need no lookup, decided by the API server in-process, so that
they hold while statekeeper is down. Rendered only where the API server serves
ValidatingAdmissionPolicy (Kubernetes 1.30 and later). No parameter resource:
nothing the policy reads can go missing after a restart.
*/}}
{{- if include "statekeeper.admissionPoliciesRendered" . }}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ include "statekeeper.fullname" . }}
  labels:
    {{- include "statekeeper.labels" . | nindent 4 }}
spec:
  # An expression that fails to evaluate refuses the write, as the workload
  # webhook's failure policy does.
  failurePolicy: Fail
  matchConstraints:
    matchPolicy: Equivalent
    resourceRules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        resources: ["deployments", "statefulsets"]
        operations: ["CREATE", "UPDATE"]
        scope: Namespaced
  variables:
`)
	for _, v := range policy.CELVariables() {
		fmt.Fprintf(&b, "    - name: %s\n      expression: %s\n", v.Name, yamlString(v.Expression))
	}
	b.WriteString("  validations:\n")
	for _, v := range policy.CELValidations() {
		fmt.Fprintf(&b, "    # %s\n    - expression: %s\n      messageExpression: %s\n      reason: Invalid\n",
			v.Rule, yamlString(v.Expression), yamlString(v.MessageExpression))
	}
	for _, bd := range Bindings {
		if bd.Condition != "" {
			fmt.Fprintf(&b, "{{- if %s }}\n", bd.Condition)
		}
		fmt.Fprintf(&b, `---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ include "statekeeper.suffixedName" (list . %q) }}
  labels:
    {{- include "statekeeper.labels" . | nindent 4 }}
spec:
  policyName: {{ include "statekeeper.fullname" . }}
  validationActions: %s
  matchResources:
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values:
            {{- range splitList "," (include "statekeeper.excludedNamespaces" .) }}
            - {{ . | quote }}
            {{- end }}
%s`, bd.Suffix, bd.Actions, bd.Selector)
		if bd.Condition != "" {
			b.WriteString("{{- end }}\n")
		}
	}
	// The probe's binding: statekeeper verifies at start that the policy
	// acts with a dry run in its own namespace, which no webhook and no
	// other binding sees (internal/server's policyProbe).
	fmt.Fprintf(&b, `---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ include "statekeeper.suffixedName" (list . "probe") }}
  labels:
    {{- include "statekeeper.labels" . | nindent 4 }}
spec:
  policyName: {{ include "statekeeper.fullname" . }}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{ .Release.Namespace }}
    objectSelector:
      matchLabels:
        app.kubernetes.io/component: %s
`, ProbeComponent)
	b.WriteString("{{- end }}\n")
	return b.String()
}

// ProbeComponent is the app.kubernetes.io/component label of the object
// statekeeper's start-up probe dry-runs (internal/server's policyProbe):
// the probe binding selects it alone.
const ProbeComponent = "admission-policy-probe"

// yamlString is s as a YAML double-quoted scalar (JSON's escapes are YAML's).
func yamlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	return strings.TrimSuffix(b.String(), "\n")
}
