package audit

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The findings are published as wg-policy PolicyReports
// (wgpolicyk8s.io/v1alpha2). The types here are the fields of the upstream
// API that statekeeper writes (its CRD is
// charts/statekeeper/templates/policyreport-crd.yaml); objects go to the API
// server as unstructured, so no generated client is needed.

// PolicyReportGroupVersion is the API of the reports; see docs/audit.md for the choice.
var PolicyReportGroupVersion = schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"}

// Kind and list kind of the reports.
const (
	PolicyReportKind     = "PolicyReport"
	PolicyReportListKind = "PolicyReportList"
)

// ReportSource names statekeeper as the tool that wrote a result.
const ReportSource = "statekeeper"

// Severities statekeeper writes (the CRD allows more).
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// PolicyReport is wgpolicyk8s.io/v1alpha2 PolicyReport.
type PolicyReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Summary           ReportSummary  `json:"summary"`
	Results           []ReportResult `json:"results,omitempty"`
}

// ReportSummary counts a report's results; statekeeper counts as passed the
// audited objects of the shard that break no rule.
type ReportSummary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// ReportResult is one rule broken by one object: a Finding as a report
// states it.
type ReportResult struct {
	Source   string `json:"source"`
	Policy   string `json:"policy"`
	Rule     string `json:"rule,omitempty"`
	Severity string `json:"severity,omitempty"`
	// Timestamp is when statekeeper first found this rule broken by this
	// object; it stays while the finding does, so an unchanged finding never
	// rewrites its report.
	Timestamp metav1.Timestamp `json:"timestamp"`
	// Result is a Finding's Result ("fail" or "warn"; the CRD allows more).
	Result     string                   `json:"result,omitempty"`
	Scored     bool                     `json:"scored,omitempty"`
	Resources  []corev1.ObjectReference `json:"resources,omitempty"`
	Message    string                   `json:"message,omitempty"`
	Properties map[string]string        `json:"properties,omitempty"`
}

// key is the finding a stored result states, if it names its object.
func (r ReportResult) key() (Key, bool) {
	if len(r.Resources) == 0 {
		return Key{}, false
	}
	return Key{UID: r.Resources[0].UID, Rule: policy.Rule(r.Rule)}, true
}
