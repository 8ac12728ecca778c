// Package report writes audit findings as wg-policy PolicyReports
// (wgpolicyk8s.io/v1alpha2): one report per namespace, split into shards when
// large, rewritten only when its content changed. The types here are the
// fields of the upstream API that statekeeper writes (its CRD is
// charts/statekeeper/templates/policyreport-crd.yaml); objects go to the API
// server as unstructured, so no generated client is needed.
package report

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API of the reports; see docs/audit.md for the choice.
var GroupVersion = schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"}

// Kind and ListKind of the reports.
const (
	Kind     = "PolicyReport"
	ListKind = "PolicyReportList"
)

// Source names statekeeper as the tool that wrote a result.
const Source = "statekeeper"

// Result values and severities statekeeper writes (the CRD allows more).
const (
	ResultFail = "fail"
	ResultWarn = "warn"

	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// PolicyReport is wgpolicyk8s.io/v1alpha2 PolicyReport.
type PolicyReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Summary           Summary  `json:"summary"`
	Results           []Result `json:"results,omitempty"`
}

// Summary counts a report's results; statekeeper counts as passed the
// audited objects of the shard that break no rule.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// Result is one rule broken by one object.
type Result struct {
	Source   string `json:"source"`
	Policy   string `json:"policy"`
	Rule     string `json:"rule,omitempty"`
	Severity string `json:"severity,omitempty"`
	// Timestamp is when statekeeper first found this rule broken by this
	// object; it stays while the finding does, so an unchanged finding never
	// rewrites its report.
	Timestamp  metav1.Timestamp         `json:"timestamp"`
	Result     string                   `json:"result,omitempty"`
	Scored     bool                     `json:"scored,omitempty"`
	Resources  []corev1.ObjectReference `json:"resources,omitempty"`
	Message    string                   `json:"message,omitempty"`
	Properties map[string]string        `json:"properties,omitempty"`
}
