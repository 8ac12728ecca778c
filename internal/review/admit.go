package review

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	gomodulesjsonpatch "gomodules.xyz/jsonpatch/v2"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Admission is what the API server makes of one write with statekeeper's
// webhooks registered, as the client sees it.
type Admission struct {
	// Skipped is true when no step reviewed the request.
	Skipped bool
	// Mode is the namespace's mode, when a step resolved it.
	Mode policy.Mode
	// Result holds the denials of the step that refused the write (none when
	// it is admitted) and the warnings of every step that ran, each once.
	Result policy.Result
	// Patch is every step's patch, in order; Object is Request.Object with
	// it applied: the object as it would be stored.
	Patch  []gomodulesjsonpatch.Operation
	Object []byte
}

// admissionOrder is the order in which the API server calls the webhooks:
// every mutating one, then the validating ones on the mutated object (the
// API server calls those in parallel; their answers do not depend on each
// other).
var admissionOrder = []Step{StepMutate, StepStamp, StepClaim, StepValidate, StepUnlabelled}

// Admit runs a request through every step statekeeper registers for its
// resource, as the API server does: mutate, stop at a denial, apply the
// patch, validate the patched object. It is the one admission sequence:
// `statekeeper check` decides with it, and the tests use it to hold the
// server's behaviour. req.Object must be the raw object (DecodedObject is
// not patched).
//
// Identical warnings of two steps are kept once, as the API server's warning
// recorder does: a workload that cannot be mutated is answered with the
// validation verdict by both of its webhooks (see mutateWorkload).
func (e *Engine) Admit(ctx context.Context, req Request) (Admission, error) {
	a := Admission{Skipped: true, Object: req.Object}
	r, ok := ResourceOf(req.Resource)
	if !ok {
		return a, fmt.Errorf("%w: %s is not reviewed by statekeeper", ErrInvalidRequest, req.Resource)
	}
	req.DecodedObject = nil
	for _, step := range admissionOrder {
		if r.Steps&step == 0 {
			continue
		}
		d, err := r.judge(e, step)(ctx, req)
		if err != nil {
			return a, err
		}
		if d.Skipped {
			continue
		}
		a.Skipped, a.Mode = false, d.Mode
		a.Result.Warnings = appendNew(a.Result.Warnings, d.Result.Warnings)
		if !d.Result.Allowed() {
			a.Result.Denials = d.Result.Denials
			return a, nil
		}
		if len(d.Patch) == 0 {
			continue
		}
		if a.Object, err = ApplyPatch(a.Object, d.Patch); err != nil {
			return a, err
		}
		a.Patch = append(a.Patch, d.Patch...)
		req.Object = a.Object
	}
	return a, nil
}

// ApplyPatch applies a step's patch to a raw object.
func ApplyPatch(object []byte, ops []gomodulesjsonpatch.Operation) ([]byte, error) {
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, err
	}
	patched, err := patch.Apply(object)
	if err != nil {
		return nil, fmt.Errorf("applying statekeeper's patch: %w", err)
	}
	return patched, nil
}

// appendNew appends the violations of more that to does not hold yet, by
// the text users read.
func appendNew(to, more []policy.Violation) []policy.Violation {
	for _, v := range more {
		seen := false
		for _, have := range to {
			if have.String() == v.String() {
				seen = true
				break
			}
		}
		if !seen {
			to = append(to, v)
		}
	}
	return to
}
