package audit

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReportWriter reads and writes statekeeper's PolicyReports, rewriting only
// those whose content changed. It needs get, list, create, update and delete
// on policyreports.wgpolicyk8s.io.
type ReportWriter struct {
	// Client writes to the API server; its reads of unstructured objects
	// must be live (controller-runtime's default), as no informer watches
	// the reports.
	Client client.Client
}

// ReportWrites counts what Sync changed.
type ReportWrites struct {
	Created, Updated, Deleted int
}

// Total is the number of API writes.
func (w ReportWrites) Total() int { return w.Created + w.Updated + w.Deleted }

// Stored returns statekeeper's reports in a namespace (those with ReportLabels).
func (w ReportWriter) Stored(ctx context.Context, namespace string) ([]PolicyReport, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(PolicyReportGroupVersion.WithKind(PolicyReportListKind))
	if err := w.Client.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels(ReportLabels)); err != nil {
		return nil, fmt.Errorf("listing the policy reports of namespace %q: %w", namespace, err)
	}
	out := make([]PolicyReport, 0, len(list.Items))
	for _, u := range list.Items {
		var r PolicyReport
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
			return nil, fmt.Errorf("reading policy report %s/%s: %w", namespace, u.GetName(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Sync makes the stored reports of a namespace the desired ones: it creates
// the missing, updates those whose summary, results or labels differ, and
// deletes the rest. A report that did not change is not written.
func (w ReportWriter) Sync(ctx context.Context, stored, desired []PolicyReport) (ReportWrites, error) {
	var done ReportWrites
	current := make(map[string]PolicyReport, len(stored))
	for _, r := range stored {
		current[r.Name] = r
	}
	var errs []error
	for _, want := range desired {
		have, ok := current[want.Name]
		delete(current, want.Name)
		switch {
		case !ok:
			if err := w.write(ctx, want, "creating", func(u client.Object) error { return w.Client.Create(ctx, u) }); err != nil {
				errs = append(errs, err)
				continue
			}
			done.Created++
		case !same(have, want):
			want.ResourceVersion = have.ResourceVersion
			if err := w.write(ctx, want, "updating", func(u client.Object) error { return w.Client.Update(ctx, u) }); err != nil {
				errs = append(errs, err)
				continue
			}
			done.Updated++
		}
	}
	for _, stale := range current {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(PolicyReportGroupVersion.WithKind(PolicyReportKind))
		u.SetNamespace(stale.Namespace)
		u.SetName(stale.Name)
		if err := client.IgnoreNotFound(w.Client.Delete(ctx, u, client.Preconditions{UID: &stale.UID})); err != nil {
			errs = append(errs, fmt.Errorf("deleting policy report %s/%s: %w", stale.Namespace, stale.Name, err))
			continue
		}
		done.Deleted++
	}
	return done, errors.Join(errs...)
}

// write encodes a report for the client and hands it to op (a create or an update).
func (w ReportWriter) write(ctx context.Context, r PolicyReport, doing string, op func(client.Object) error) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&r)
	if err == nil {
		u := &unstructured.Unstructured{Object: obj}
		u.SetGroupVersionKind(PolicyReportGroupVersion.WithKind(PolicyReportKind))
		err = op(u)
	}
	if err != nil {
		return fmt.Errorf("%s policy report %s/%s: %w", doing, r.Namespace, r.Name, err)
	}
	return nil
}

// same reports whether a stored report already says what want says.
// Labels others added are kept; semantic equality treats nil and empty
// alike, as the API server stores them.
func same(have, want PolicyReport) bool {
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return false
		}
	}
	return equality.Semantic.DeepEqual(have.Summary, want.Summary) &&
		equality.Semantic.DeepEqual(have.Results, want.Results)
}
