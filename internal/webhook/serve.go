package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/review"
	"github.com/statekeeper/statekeeper/internal/wire"
)

// ServeHTTP serves the handler on its webhook path, as admission.Webhook
// would, but reads the AdmissionReview with the wire package, which decodes
// the objects straight into their Go types (review.Resources) in one pass.
// Handle is the same decision for callers that already hold an
// admission.Request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rv, err := wire.Read(r, review.NewObject)
	// The review's strings point into a reused buffer: nothing of it may
	// be kept past the answer (metrics labels and the live reads' keys are
	// copies).
	defer rv.Release()
	if err != nil {
		h.log.Error(err, "unreadable admission review", "webhook", h.name)
		code := int32(http.StatusBadRequest)
		if errors.Is(err, wire.ErrTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		resp := admission.Errored(code, err)
		wire.Write(w, rv.APIVersion, &resp.AdmissionResponse)
		return
	}
	req := admission.Request{AdmissionRequest: rv.Request}
	resp := h.handleSafely(r.Context(), incoming{request: req, object: rv.Object, oldObject: rv.OldObject})
	if err := complete(&resp, req); err != nil {
		h.served.Error(err, "unable to encode the patch", "uid", req.UID)
		resp = admission.Errored(http.StatusInternalServerError, errors.New("unable to encode the response"))
		resp.UID = req.UID
	}
	wire.Write(w, rv.APIVersion, &resp.AdmissionResponse)
}

// handleSafely decides with a last line of defence: a bug must cost one
// request a 500, not the process. The type checks in the handler and the
// engine are what keep crafted requests from getting here.
func (h *Handler) handleSafely(ctx context.Context, in incoming) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error(fmt.Errorf("panic: %v", p), "admission handler panicked", "uid", in.request.UID)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("internal error"))
		}
	}()
	return h.handle(ctx, in, h.served)
}

// complete is Response.Complete with the patch encoded by wire.EncodePatch,
// the same bytes without encoding/json's reflection.
func complete(resp *admission.Response, req admission.Request) error {
	if len(resp.Patches) > 0 {
		patch, err := wire.EncodePatch(resp.Patches)
		if err != nil {
			return err
		}
		patchType := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType, resp.Patches = patch, &patchType, nil
	}
	return resp.Complete(req)
}
