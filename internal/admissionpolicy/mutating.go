package admissionpolicy

import (
	"fmt"
	"strings"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// MutatingTemplatePath is where the chart keeps the generated
// MutatingAdmissionPolicy, relative to the repository root.
const MutatingTemplatePath = "charts/statekeeper/templates/mutatingadmissionpolicy.yaml"

// The flags' values as CEL string literals, rendered by Helm: the chart's
// schema holds them to a quantity and a DNS subdomain, neither of which can
// contain a quote.
const (
	helmDefaultSize  = `'{{ .Values.config.defaultStorageSize }}'`
	helmDefaultClass = `'{{ .Values.config.defaultStorageClass }}'`
)

// MutatingChartTemplate is the chart's mutatingadmissionpolicy.yaml.
func MutatingChartTemplate() string {
	var b strings.Builder
	b.WriteString(`{{- /*
Generated from internal/policy/celmutate.go by internal/admissionpolicy: do not
edit; go test ./internal/admissionpolicy -update rewrites it.
The StatefulSet mutations that need no lookup (the headless Service name, the
injected claim templates, the pod template label, and their carry-overs on
UPDATE), applied by the API server in-process so that they happen while
statekeeper is down. Rendered only where the API server serves
MutatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.36).
The default size and class are rendered in: no parameter resource.
*/}}
{{- if include "statekeeper.mutatingAdmissionPolicyRendered" . }}
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: {{ include "statekeeper.fullname" . }}
  labels:
    {{- include "statekeeper.labels" . | nindent 4 }}
spec:
  # An expression that fails to evaluate leaves the object to the webhook,
  # which makes the same mutations (and which a warn namespace must never be
  # blocked by).
  failurePolicy: Ignore
  # The mutations read only the object's own fields, and none undoes
  # another plugin's: once is enough.
  reinvocationPolicy: Never
  matchConstraints:
    matchPolicy: Equivalent
    resourceRules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        resources: ["statefulsets"]
        operations: ["CREATE", "UPDATE"]
        scope: Namespaced
  variables:
`)
	for _, v := range append(policy.CELVariables(), policy.CELMutationVariables()...) {
		fmt.Fprintf(&b, "    - name: %s\n      expression: %s\n", v.Name, yamlString(v.Expression))
	}
	b.WriteString("  mutations:\n")
	for _, m := range policy.CELMutations(helmDefaultSize, helmDefaultClass) {
		fmt.Fprintf(&b, "    # %s\n    - patchType: JSONPatch\n      jsonPatch:\n        expression: %s\n", m.Mutator, yamlString(m.Expression))
	}
	// One binding: the namespaces statekeeper mutates in (docs/spec.md §6:
	// every mode but audit and off), unlabelled ones only when the default
	// mode is one of those.
	b.WriteString(`---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: {{ include "statekeeper.fullname" . }}
  labels:
    {{- include "statekeeper.labels" . | nindent 4 }}
spec:
  policyName: {{ include "statekeeper.fullname" . }}
  matchResources:
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values:
            {{- range splitList "," (include "statekeeper.excludedNamespaces" .) }}
            - {{ . | quote }}
            {{- end }}
        - key: statekeeper.io/mode
          operator: NotIn
          values: ["audit", "off"]
        {{- if has .Values.config.defaultMode (list "audit" "off") }}
        - key: statekeeper.io/mode
          operator: Exists
        {{- end }}
{{- end }}
`)
	return b.String()
}
