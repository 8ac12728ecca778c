// Package review is statekeeper's decision engine: it decodes a request once,
// gathers the facts the rules need through lookup.Lookup, calls the pure policy
// and applies the namespace mode. The webhook server and `statekeeper check`
// both decide through it, so they cannot disagree.
package review

import (
	"github.com/statekeeper/statekeeper/internal/policy"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// Resource names what a request is about, as the API server's admission request does.
type Resource struct {
	Group, Version, Resource, SubResource string
}

// Request is one admission request in the engine's terms.
type Request struct {
	Operation policy.Operation
	Resource  Resource
	Namespace string
	Name      string
	// Object and OldObject are the raw JSON bodies; OldObject only on UPDATE
	// and DELETE (where it is the object being deleted, and Object is empty).
	Object    []byte
	OldObject []byte
	// DecodedObject and DecodedOldObject, when set, replace Object and
	// OldObject: the caller already holds them as Go objects (the audit
	// judges what the informer caches hold).
	DecodedObject    runtime.Object
	DecodedOldObject runtime.Object
}

// Decision is the engine's answer.
type Decision struct {
	// Skipped is true when statekeeper does not manage the request (excluded or
	// `off` namespace, unlabelled workload, pod of an unmanaged owner).
	Skipped bool
	// Reason says why a managed-looking request was skipped when the kind of
	// request does not say it (a pod whose owner is unmanaged or unknown), for
	// the decision's log line.
	Reason string
	Mode   policy.Mode
	// Patch is the JSON patch against Request.Object (mutations only).
	Patch []jsonpatch.Operation
	// Result holds denials and warnings. In warn mode the engine has already
	// moved denials to warnings; in audit mode it is empty.
	Result policy.Result
	// Verdict is what the rules said before the namespace mode applied
	// (without the mode's own warnings): the audit annotations and the
	// background audit report it whatever the mode.
	Verdict policy.Result
	// Name is the object's name (from the request, else from the object),
	// which a denial's status names.
	Name string
}
