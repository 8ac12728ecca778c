package audit

import (
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// ReportNamePrefix names the reports: "statekeeper" for a namespace that
// fits in one report, "statekeeper-<shard>" otherwise.
const ReportNamePrefix = "statekeeper"

// ReportLabels mark the reports statekeeper owns; the writer lists and
// replaces only those.
var ReportLabels = map[string]string{policy.LabelManagedBy: policy.ManagerName}

// DefaultMaxReportResults bounds the results of one report. A result is
// about 0.5 KiB of JSON, so a full report stays far below the 1.5 MiB that
// etcd stores per object.
const DefaultMaxReportResults = 1000

// FirstFound is when each finding already reported was first found.
type FirstFound map[Key]metav1.Timestamp

// Reports returns the PolicyReports of one namespace's audit: none when
// nothing was audited there. Objects are spread over shards by a hash of
// their UID, the number of shards doubling until none holds more than
// maxResults results, so that a new or fixed object rewrites only its own
// shard. A finding keeps the timestamp firstFound gives it; a new one gets
// now.
func Reports(a NamespaceAudit, firstFound FirstFound, now time.Time, maxResults int) []PolicyReport {
	if len(a.Audited) == 0 {
		return nil
	}
	if maxResults < 1 {
		maxResults = DefaultMaxReportResults
	}
	shards := 1
	for !fits(a.Findings, shards, maxResults) {
		shards *= 2
	}
	reports := make([]PolicyReport, shards)
	for i := range reports {
		name := ReportNamePrefix
		if shards > 1 {
			name = fmt.Sprintf("%s-%d", ReportNamePrefix, i)
		}
		reports[i] = PolicyReport{
			TypeMeta:   metav1.TypeMeta{APIVersion: PolicyReportGroupVersion.String(), Kind: PolicyReportKind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: ReportLabels},
		}
	}
	stamp := metav1.Timestamp{Seconds: now.Unix()}
	broken := map[types.UID]bool{}
	for _, f := range a.Findings {
		broken[f.Object.UID] = true
		r := &reports[shardOf(f.Object.UID, shards)]
		ts, ok := firstFound[f.Key()]
		if !ok {
			ts = stamp
		}
		r.Results = append(r.Results, reportResult(f, ts))
		switch f.Result {
		case Fail:
			r.Summary.Fail++
		case Warn:
			r.Summary.Warn++
		}
	}
	for _, o := range a.Audited {
		if !broken[o.UID] {
			reports[shardOf(o.UID, shards)].Summary.Pass++
		}
	}
	return reports
}

func fits(findings []Finding, shards, maxResults int) bool {
	load := make([]int, shards)
	for _, f := range findings {
		i := shardOf(f.Object.UID, shards)
		if load[i]++; load[i] > maxResults && shards < maxShards {
			return false
		}
	}
	return true
}

// maxShards stops the doubling when one object alone has more findings than
// a shard may hold (it has at most one per rule, so only a tiny maxResults
// gets there).
const maxShards = 1 << 12

func shardOf(uid types.UID, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return int(h.Sum32() % uint32(shards))
}

func reportResult(f Finding, ts metav1.Timestamp) ReportResult {
	r := ReportResult{
		Source:    ReportSource,
		Policy:    policy.ManagerName,
		Rule:      string(f.Rule),
		Timestamp: ts,
		Result:    string(f.Result),
		Scored:    true,
		Resources: []corev1.ObjectReference{{
			APIVersion: f.Object.APIVersion, Kind: f.Object.Kind,
			Namespace: f.Object.Namespace, Name: f.Object.Name, UID: f.Object.UID,
		}},
		Message: f.Message,
	}
	switch f.Result {
	case Fail:
		r.Severity = SeverityHigh
	case Warn:
		r.Severity = SeverityMedium
	}
	if f.Field != "" {
		r.Properties = map[string]string{"field": f.Field}
	}
	return r
}

// FirstFoundIn collects the timestamps of the findings in stored reports.
func FirstFoundIn(reports []PolicyReport) FirstFound {
	out := FirstFound{}
	for _, r := range reports {
		for _, res := range r.Results {
			if k, ok := res.key(); ok {
				out[k] = res.Timestamp
			}
		}
	}
	return out
}
