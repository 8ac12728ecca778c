package report

import (
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// NamePrefix names the reports: "statekeeper" for a namespace that fits in
// one report, "statekeeper-<shard>" otherwise.
const NamePrefix = "statekeeper"

// Labels mark the reports statekeeper owns; the writer lists and replaces only those.
var Labels = map[string]string{policy.LabelManagedBy: policy.ManagerName}

// DefaultMaxResults bounds the results of one report. A result is about
// 0.5 KiB of JSON, so a full report stays far below the 1.5 MiB that etcd
// stores per object.
const DefaultMaxResults = 1000

// Previous are the timestamps of the findings already reported, by key.
type Previous map[audit.Key]metav1.Timestamp

// Build returns the reports of one namespace's audit: none when nothing was
// audited there. Objects are spread over shards by a hash of their UID, the
// number of shards doubling until none holds more than maxResults results,
// so that a new or fixed object rewrites only its own shard. A finding keeps
// its previous timestamp; a new one gets now.
func Build(a audit.NamespaceAudit, previous Previous, now time.Time, maxResults int) []PolicyReport {
	if len(a.Audited) == 0 {
		return nil
	}
	if maxResults < 1 {
		maxResults = DefaultMaxResults
	}
	shards := 1
	for !fits(a.Findings, shards, maxResults) {
		shards *= 2
	}
	reports := make([]PolicyReport, shards)
	for i := range reports {
		name := NamePrefix
		if shards > 1 {
			name = fmt.Sprintf("%s-%d", NamePrefix, i)
		}
		reports[i] = PolicyReport{
			TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: Kind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: Labels},
		}
	}
	stamp := metav1.Timestamp{Seconds: now.Unix()}
	broken := map[types.UID]bool{}
	for _, f := range a.Findings {
		broken[f.Object.UID] = true
		r := &reports[shardOf(f.Object.UID, shards)]
		ts, ok := previous[f.Key()]
		if !ok {
			ts = stamp
		}
		r.Results = append(r.Results, result(f, ts))
		switch f.Result {
		case audit.Fail:
			r.Summary.Fail++
		case audit.Warn:
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

func fits(findings []audit.Finding, shards, maxResults int) bool {
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

func result(f audit.Finding, ts metav1.Timestamp) Result {
	r := Result{
		Source:    Source,
		Policy:    policy.ManagerName,
		Rule:      string(f.Rule),
		Timestamp: ts,
		Scored:    true,
		Resources: []corev1.ObjectReference{{
			APIVersion: f.Object.APIVersion, Kind: f.Object.Kind,
			Namespace: f.Object.Namespace, Name: f.Object.Name, UID: f.Object.UID,
		}},
		Message: f.Message,
	}
	switch f.Result {
	case audit.Fail:
		r.Result, r.Severity = ResultFail, SeverityHigh
	case audit.Warn:
		r.Result, r.Severity = ResultWarn, SeverityMedium
	}
	if f.Field != "" {
		r.Properties = map[string]string{"field": f.Field}
	}
	return r
}

// PreviousOf collects the timestamps of the findings in stored reports.
func PreviousOf(reports []PolicyReport) Previous {
	out := Previous{}
	for _, r := range reports {
		for _, res := range r.Results {
			if len(res.Resources) == 0 {
				continue
			}
			out[audit.Key{UID: res.Resources[0].UID, Rule: policy.Rule(res.Rule)}] = res.Timestamp
		}
	}
	return out
}
