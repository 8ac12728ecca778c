// Package audit judges what is already stored in the cluster by the rules
// admission applies to writes, through the one review engine, and publishes
// what it finds. The background audit of `serve` and `statekeeper audit` both
// call Namespace, so they find the same violations with the same rule IDs and
// messages as admission.
//
// Namespace judges one namespace over a Source: the server's caches
// (ReaderSource) or the Snapshot that `statekeeper audit` lists once. Reports
// turns one namespace's findings into sharded wgpolicyk8s.io/v1alpha2
// PolicyReports without a client; ReportWriter stores them, rewriting only
// those that changed. Controller is the leader's background audit that ties
// them together, with the violations gauge (Metrics) and Events.
package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// Result is how a finding is reported, in PolicyReport terms.
type Result string

const (
	// Fail: a rule that admission enforces (a denial in enforce mode).
	Fail Result = "fail"
	// Warn: a rule that admission only warns about.
	Warn Result = "warn"
)

// Object identifies an audited object.
type Object struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid"`
}

func (o Object) String() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

// Finding is one rule that one object breaks.
type Finding struct {
	Object  Object      `json:"object"`
	Rule    policy.Rule `json:"rule"`
	Result  Result      `json:"result"`
	Field   string      `json:"field,omitempty"`
	Message string      `json:"message"`
}

// Key identifies a finding across passes: the same rule on the same object.
type Key struct {
	UID  types.UID
	Rule policy.Rule
}

// Key returns the finding's key.
func (f Finding) Key() Key { return Key{UID: f.Object.UID, Rule: f.Rule} }

// NamespaceAudit is the audit of one namespace.
type NamespaceAudit struct {
	Namespace string `json:"namespace"`
	// Audited lists every object judged, in Kind, name order; an object
	// outside statekeeper's scope (unlabelled, excluded or off namespace) is
	// not listed.
	Audited []Object `json:"audited"`
	// Findings are sorted by object (as Audited), then rule and message.
	Findings []Finding `json:"findings"`
}

// Source lists the stored objects the audit judges.
type Source interface {
	// Objects returns the Deployments, StatefulSets and
	// HorizontalPodAutoscalers (autoscaling/v2) of a namespace.
	Objects(ctx context.Context, namespace string) ([]client.Object, error)
}

// Namespace audits one namespace: every object Source lists is judged by
// engine.Audit.
func Namespace(ctx context.Context, engine *review.Engine, src Source, namespace string) (NamespaceAudit, error) {
	out := NamespaceAudit{Namespace: namespace}
	objects, err := src.Objects(ctx, namespace)
	if err != nil {
		return out, err
	}
	for _, obj := range objects {
		d, err := engine.Audit(ctx, obj)
		if err != nil {
			return out, fmt.Errorf("auditing %s %s/%s: %w", kindOf(obj), obj.GetNamespace(), obj.GetName(), err)
		}
		if d.Skipped {
			continue
		}
		ref := objectOf(obj)
		out.Audited = append(out.Audited, ref)
		for _, v := range d.Verdict.Denials {
			out.Findings = append(out.Findings, finding(ref, v, Fail))
		}
		for _, v := range d.Verdict.Warnings {
			out.Findings = append(out.Findings, finding(ref, v, Warn))
		}
	}
	slices.SortFunc(out.Audited, compareObjects)
	slices.SortStableFunc(out.Findings, func(a, b Finding) int {
		return cmp.Or(compareObjects(a.Object, b.Object), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
	return out, nil
}

func finding(o Object, v policy.Violation, r Result) Finding {
	f := Finding{Object: o, Rule: v.Rule, Result: r, Message: v.Message}
	if v.Field != nil {
		f.Field = v.Field.String()
	}
	return f
}

func compareObjects(a, b Object) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
}

// objectOf names an audited object; objects read from a cache carry no
// TypeMeta, so the kind comes from the Go type.
func objectOf(obj client.Object) Object {
	apiVersion, kind := typeOf(obj)
	return Object{APIVersion: apiVersion, Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()}
}

func kindOf(obj client.Object) string {
	_, kind := typeOf(obj)
	return kind
}

func typeOf(obj client.Object) (apiVersion, kind string) {
	switch obj.(type) {
	case *appsv1.Deployment:
		return appsv1.SchemeGroupVersion.String(), "Deployment"
	case *appsv1.StatefulSet:
		return appsv1.SchemeGroupVersion.String(), "StatefulSet"
	case *autoscalingv2.HorizontalPodAutoscaler:
		return autoscalingv2.SchemeGroupVersion.String(), "HorizontalPodAutoscaler"
	}
	return "", fmt.Sprintf("%T", obj)
}

// ReaderSource lists from a client.Reader: the manager's cache in `serve`.
type ReaderSource struct{ Reader client.Reader }

// Objects implements Source. The cached objects are not copied: the engine
// only reads them, and a pass over thousands of workloads would otherwise
// copy them all.
func (s ReaderSource) Objects(ctx context.Context, namespace string) ([]client.Object, error) {
	opts := []client.ListOption{client.InNamespace(namespace), client.UnsafeDisableDeepCopy}
	var out []client.Object
	var deployments appsv1.DeploymentList
	if err := s.Reader.List(ctx, &deployments, opts...); err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	for i := range deployments.Items {
		out = append(out, &deployments.Items[i])
	}
	var statefulSets appsv1.StatefulSetList
	if err := s.Reader.List(ctx, &statefulSets, opts...); err != nil {
		return nil, fmt.Errorf("listing statefulsets: %w", err)
	}
	for i := range statefulSets.Items {
		out = append(out, &statefulSets.Items[i])
	}
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := s.Reader.List(ctx, &hpas, opts...); err != nil {
		return nil, fmt.Errorf("listing horizontalpodautoscalers: %w", err)
	}
	for i := range hpas.Items {
		out = append(out, &hpas.Items[i])
	}
	return out, nil
}
