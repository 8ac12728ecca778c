package review

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Why a claim was not sized (Decision.Reason).
const (
	reasonClaimNotCreate = "only claim creations are sized"
	reasonClaimNotOwned  = "no stateful statefulset records a larger size for a claim template this claim is made from"
)

// sizeClaim gives a claim that the StatefulSet controller creates for a new
// ordinal the size recorded for its template (statekeeper.io/claim-sizes,
// docs/spec.md §10): the template keeps its stored size, and without this
// the claim would be made at that size and raised only once bound. The
// claim's StatefulSet is found by the claim's name,
// "<template>-<statefulset>-<ordinal>", and its labels, which the controller
// copies from the StatefulSet's selector; it is read from the cache only.
// Like pod stamping, the webhook fails open: the volume reconciler raises
// a claim it did not size once it is bound.
func (e *Engine) sizeClaim(ctx context.Context, req Request) (Decision, error) {
	d := Decision{Name: req.Name}
	skip := func(reason string) (Decision, error) {
		d.Skipped, d.Reason = true, reason
		return d, nil
	}
	if req.Operation != policy.OpCreate {
		return skip(reasonClaimNotCreate)
	}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	claim, err := objectOf[corev1.PersistentVolumeClaim](req.DecodedObject, req.Object, "PersistentVolumeClaim")
	if err != nil {
		return d, err
	}
	claim.Namespace = nonEmpty(claim.Namespace, req.Namespace)
	claim.Name = nonEmpty(claim.Name, req.Name)
	d.Name = claim.Name
	owners := policy.ClaimOwners(claim.Name)
	if len(owners) == 0 {
		return skip(reasonClaimNotOwned)
	}
	if _, err := e.resolveMode(ctx, &d, claim.Namespace); err != nil || d.Skipped {
		return d, err
	}
	if !d.Mode.Acts() {
		return skip(reasonAuditOnly)
	}
	for _, owner := range owners {
		// The cache only, with no read of the API server on a miss: a claim
		// the StatefulSet controller creates follows its StatefulSet, which
		// the cache holds by then, and the fallback raises the claim anyway.
		w, err := e.lookup.Workload(ctx, policy.KindStatefulSet, claim.Namespace, owner.StatefulSet)
		if err != nil {
			return d, fmt.Errorf("looking up statefulset %q for claim %q: %w", owner.StatefulSet, claim.Name, err)
		}
		if w == nil {
			continue
		}
		if t, _, err := w.DeployType(); err != nil || !t.Stateful() {
			continue
		}
		if patch := policy.MutateNewClaim(claim, *w, owner.Template); len(patch) > 0 {
			d.Patch = patch
			return d, nil
		}
	}
	return skip(reasonClaimNotOwned)
}
