package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	jsoniter "github.com/json-iterator/go"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/review"
)

// maxRequestSize bounds an AdmissionReview body as controller-runtime does:
// two objects of at most 3 MB each plus the envelope.
const maxRequestSize = 7 << 20

// admissionReview is the AdmissionReview envelope. admission.k8s.io/v1 and
// v1beta1 share its shape; the answer carries the version of the request.
type admissionReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *admissionv1.AdmissionRequest  `json:"request,omitempty"`
	Response        *admissionv1.AdmissionResponse `json:"response,omitempty"`
}

// incoming is a request read from the wire: the admission request and,
// when the one-pass reader could, its objects already decoded.
type incoming struct {
	apiVersion        string
	request           admission.Request
	object, oldObject runtime.Object
}

// ServeHTTP serves the handler on its webhook path, as admission.Webhook
// would, but reads the AdmissionReview in one pass that decodes the objects
// straight into their Go types (see readOnePass): the API machinery's
// generic decoder that admission.Webhook uses scans the body three times
// before a handler has even looked at the object. Handle is the same
// decision for callers that already hold an admission.Request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in, err := readReview(r)
	if err != nil {
		h.log.Error(err, "unreadable admission review", "webhook", h.name)
		code := int32(http.StatusBadRequest)
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeReview(w, in.apiVersion, admission.Errored(code, err))
		return
	}
	log := h.log.WithValues("webhook", h.name)
	ctx := logf.IntoContext(r.Context(), log)
	resp := h.handleSafely(ctx, in)
	if err := resp.Complete(in.request); err != nil {
		log.Error(err, "unable to encode the patch", "uid", in.request.UID)
		resp = admission.Errored(http.StatusInternalServerError, errors.New("unable to encode the response"))
		resp.UID = in.request.UID
	}
	writeReview(w, in.apiVersion, resp)
}

var errTooLarge = fmt.Errorf("request body is larger than %d bytes", maxRequestSize)

// readReview reads and decodes the request's AdmissionReview.
func readReview(r *http.Request) (incoming, error) {
	in := incoming{apiVersion: admissionv1.SchemeGroupVersion.String()}
	if r.Body == nil || r.Body == http.NoBody {
		return in, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return in, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	limited := &io.LimitedReader{R: r.Body, N: maxRequestSize + 1}
	body, err := io.ReadAll(limited)
	if err != nil {
		return in, fmt.Errorf("reading the request body: %w", err)
	}
	if limited.N <= 0 {
		return in, errTooLarge
	}

	ar, ok := readOnePass(body)
	if !ok {
		// The generic path, for anything the one-pass reader did not take
		// (a broken body, an object that does not decode): slower, but its
		// errors say what is wrong, and the engine then decodes the raw
		// objects and says what is wrong with them.
		var generic admissionReview
		if err := json.Unmarshal(body, &generic); err != nil {
			return in, fmt.Errorf("decoding the AdmissionReview: %w", err)
		}
		if generic.Kind != "AdmissionReview" {
			return in, fmt.Errorf("expected an AdmissionReview, got kind %q", generic.Kind)
		}
		if generic.Request == nil {
			return in, errors.New("the AdmissionReview carries no request")
		}
		ar = incoming{apiVersion: generic.APIVersion, request: admission.Request{AdmissionRequest: *generic.Request}}
	}
	switch ar.apiVersion {
	case "admission.k8s.io/v1", "admission.k8s.io/v1beta1":
	default:
		return in, fmt.Errorf("expected an admission.k8s.io/v1 AdmissionReview, got apiVersion %q", ar.apiVersion)
	}
	return ar, nil
}

// typedObjects are the Go types of the objects statekeeper reviews, by the
// group and kind the request announces (request.kind, which the API server
// writes before the objects). The handler checks that this kind is the
// resource's, and the engine that the object's own kind agrees.
var typedObjects = map[schema.GroupKind]func() runtime.Object{
	deploymentKind:  func() runtime.Object { return &appsv1.Deployment{} },
	statefulSetKind: func() runtime.Object { return &appsv1.StatefulSet{} },
	scaleKind:       func() runtime.Object { return &autoscalingv1.Scale{} },
	hpaKind:         func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	podKind:         func() runtime.Object { return &corev1.Pod{} },
}

// readOnePass decodes a well-formed AdmissionReview in a single pass over
// the body, with the engine's fast decoder: the envelope field by field and
// each object straight into its Go type. ok is false for anything else; the
// caller then takes the generic path.
func readOnePass(body []byte) (in incoming, ok bool) {
	it := review.JSON.BorrowIterator(body)
	defer review.JSON.ReturnIterator(it)
	var sawRequest bool
	complete := it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		switch key {
		case "apiVersion":
			in.apiVersion = it.ReadString()
		case "kind":
			if it.ReadString() != "AdmissionReview" {
				return false
			}
		case "request":
			sawRequest = !it.ReadNil() && readRequest(it, &in)
			return sawRequest
		default:
			it.Skip()
		}
		return it.Error == nil
	})
	if !complete || it.Error != nil && it.Error != io.EOF || !sawRequest {
		return incoming{}, false
	}
	// Nothing may follow the review.
	if it.WhatIsNext() != jsoniter.InvalidValue {
		return incoming{}, false
	}
	return in, true
}

// readRequest reads the fields of an admissionv1.AdmissionRequest that
// handle reads, and skips the others (userInfo, options, dryRun, the
// request* fields): decoding them would be work on every request for
// nothing. A field handle comes to read must be added here too; the tests
// serve every fixture through this reader and through admission.Webhook and
// require the same answer.
func readRequest(it *jsoniter.Iterator, in *incoming) bool {
	r := &in.request.AdmissionRequest
	return it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		switch key {
		case "uid":
			r.UID = types.UID(it.ReadString())
		case "kind":
			it.ReadVal(&r.Kind)
		case "resource":
			it.ReadVal(&r.Resource)
		case "subResource":
			r.SubResource = it.ReadString()
		case "name":
			r.Name = it.ReadString()
		case "namespace":
			r.Namespace = it.ReadString()
		case "operation":
			r.Operation = admissionv1.Operation(it.ReadString())
		case "object":
			in.object = readObject(it, r.Kind, &r.Object)
		case "oldObject":
			in.oldObject = readObject(it, r.Kind, &r.OldObject)
		default:
			it.Skip()
		}
		return it.Error == nil
	})
}

// readObject decodes an object into the Go type of kind, or keeps it raw
// when the kind is not one statekeeper reviews or not yet known.
func readObject(it *jsoniter.Iterator, kind metav1.GroupVersionKind, raw *runtime.RawExtension) runtime.Object {
	if it.ReadNil() {
		return nil
	}
	newObject, known := typedObjects[schema.GroupKind{Group: kind.Group, Kind: kind.Kind}]
	if !known {
		raw.Raw = it.SkipAndReturnBytes()
		return nil
	}
	obj := newObject()
	it.ReadVal(obj)
	return obj
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
	return h.handle(ctx, in)
}

func writeReview(w http.ResponseWriter, apiVersion string, resp admission.Response) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	})
}
