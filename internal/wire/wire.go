// Package wire reads AdmissionReviews off the wire and writes the answers.
//
// The contract of Read: it returns the same admission request as the stock
// decoder (the API machinery's, which controller-runtime's admission.Webhook
// uses) for every body that decoder accepts, with every field of the request
// read. On the fast path it also hands out the request's objects already
// decoded into their Go types, so that each object is decoded exactly once;
// FuzzReadMatchesStock holds the contract. One exception, written down in
// policy: of a workload's pod-template containers only the fields policy
// reads are decoded (template.go); the rest is checked as JSON and skipped,
// so a value there that is not of its field's type (a malformed quantity)
// does not make the reader refuse the object. The API server decodes every
// object before it calls a webhook, so it never sends one.
//
// The fast path (readOnePass) reads a well-formed review in a single pass
// with json-iterator: the envelope field by field and each object straight
// into its Go type. The stock decoder scans the body three times before a
// handler has looked at the object, and a handler then decodes the object
// again: that difference is what makes statekeeper's handlers faster than a
// controller-runtime webhook that does nothing (docs/performance.md). Anything
// the fast path does not take (a broken body, invalid UTF-8, an object that
// does not decode) goes the generic way, whose errors say what is wrong.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	sigsjson "sigs.k8s.io/json"
)

// JSON is the fast decoder: json-iterator decodes the typed API objects
// about three times faster than encoding/json (which the API machinery and
// controller-runtime use) with the same results, honouring the types' own
// UnmarshalJSON (quantities, times, int-or-string). Keys match
// case-sensitively, as the API machinery's decoder does. Of a pod
// template's containers it decodes only what policy reads (template.go).
var JSON = newAPI(false)

// MaxRequestSize bounds an AdmissionReview body as controller-runtime does:
// two objects of at most 3 MB each plus the envelope.
const MaxRequestSize = 7 << 20

// ErrTooLarge is the error of a body larger than MaxRequestSize.
var ErrTooLarge = fmt.Errorf("request body is larger than %d bytes", MaxRequestSize)

// Versions of AdmissionReview; v1 and v1beta1 share their shape, and the
// answer carries the version of the request.
const (
	V1      = "admission.k8s.io/v1"
	V1beta1 = "admission.k8s.io/v1beta1"
)

// Review is an AdmissionReview as read.
type Review struct {
	// APIVersion is the review's version, which the answer must carry.
	APIVersion string
	// Request is the whole admission request. Its Object and OldObject hold
	// the raw bodies unless they were decoded (see below).
	Request admissionv1.AdmissionRequest
	// Object and OldObject are the request's objects decoded into the Go type
	// that NewObject gives for request.kind, when the fast path could; the
	// raw body of such an object is not kept.
	Object, OldObject runtime.Object
	// body is the pooled buffer the review was read from (Read, Release).
	body *[]byte
}

// NewObject returns an empty object of kind's Go type, or nil for a kind
// whose objects are kept raw.
type NewObject func(kind schema.GroupKind) runtime.Object

// Read reads the request's AdmissionReview. On an error the returned
// Review still carries the version to answer in.
//
// The review's strings point into a body buffer that Read takes from a pool:
// the caller must call Release once it has written the answer, and keep
// nothing of the review past that (copy a string it keeps).
func Read(r *http.Request, newObject NewObject) (Review, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return Review{APIVersion: V1}, errors.New("request body is empty")
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return Review{APIVersion: V1}, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	body, err := readBody(r)
	if err != nil {
		releaseBody(body)
		return Review{APIVersion: V1}, err
	}
	rv, err := Decode(*body, newObject)
	rv.body = body
	return rv, err
}

// Release gives the review's body buffer back for the next request: the
// review, its objects and every string read from them must not be used
// afterwards. Reviews that Decode read own no buffer; Release does nothing.
func (rv *Review) Release() {
	releaseBody(rv.body)
	rv.body = nil
}

// bodies are reused body buffers. A body allocated per request was, for
// large objects, most of the garbage a review left behind, and the
// collector's work with it: a buffer over 32 kB is allocated zeroed, on
// its own span.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers kept for reuse; rare larger bodies are
// left to the collector rather than kept.
const maxPooledBody = 256 << 10

func releaseBody(body *[]byte) {
	if body == nil || cap(*body) > maxPooledBody {
		return
	}
	if poisonReleased {
		// Under the race detector (the test suites), a released body is
		// overwritten, so that a string kept past Release shows.
		b := (*body)[:cap(*body)]
		for i := range b {
			b[i] = 0xff
		}
	}
	*body = (*body)[:0]
	bodies.Put(body)
}

// readBody reads a body of at most MaxRequestSize bytes into a pooled
// buffer, grown once to Content-Length when the client sent one (the API
// server does), so that the body is read without growing and copying the
// buffer.
func readBody(r *http.Request) (*[]byte, error) {
	if r.ContentLength > MaxRequestSize {
		return nil, ErrTooLarge
	}
	size := int64(512)
	if r.ContentLength > 0 {
		// One byte more, so that seeing the end takes no second buffer.
		size = r.ContentLength + 1
	}
	buf := bodies.Get().(*[]byte)
	if int64(cap(*buf)) < size {
		*buf = make([]byte, 0, size)
	}
	body := (*buf)[:0]
	defer func() { *buf = body }()
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if len(body) > MaxRequestSize {
			return buf, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("reading the request body: %w", err)
		}
	}
}

// Decode decodes an AdmissionReview body. The review's strings may point
// into body, which must not be written to afterwards.
func Decode(body []byte, newObject NewObject) (Review, error) {
	rv, ok := readOnePass(body, newObject)
	if !ok {
		var err error
		if rv, err = readGeneric(body); err != nil {
			return Review{APIVersion: V1}, err
		}
	}
	switch rv.APIVersion {
	case V1, V1beta1:
	default:
		return Review{APIVersion: V1}, fmt.Errorf("expected an %s AdmissionReview, got apiVersion %q", V1, rv.APIVersion)
	}
	return rv, nil
}

// envelope is the AdmissionReview as the generic path decodes it.
type envelope struct {
	metav1.TypeMeta `json:",inline"`
	Request         *admissionv1.AdmissionRequest  `json:"request,omitempty"`
	Response        *admissionv1.AdmissionResponse `json:"response,omitempty"`
}

// readGeneric decodes the review as the API machinery does, with errors
// that say what is wrong: the request with case-sensitive keys
// (sigs.k8s.io/json), apiVersion and kind as its serializer finds them,
// with encoding/json, which also takes "ApiVersion" or "KIND".
func readGeneric(body []byte) (Review, error) {
	var e envelope
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &e); err != nil {
		return Review{}, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	gvk, err := serializerjson.DefaultMetaFactory.Interpret(body)
	if err != nil {
		return Review{}, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	if gvk.Kind != "AdmissionReview" {
		return Review{}, fmt.Errorf("expected an AdmissionReview, got kind %q", gvk.Kind)
	}
	if e.Request == nil {
		return Review{}, errors.New("the AdmissionReview carries no request")
	}
	return Review{APIVersion: gvk.GroupVersion().String(), Request: *e.Request}, nil
}

// isEnvelopeKey reports whether a key the one-pass reader does not take
// names apiVersion or kind to the API machinery's serializer, which matches
// them as encoding/json does, case-insensitively (readGeneric).
func isEnvelopeKey(key string) bool {
	return strings.EqualFold(key, "apiVersion") || strings.EqualFold(key, "kind")
}

// readOnePass decodes a well-formed AdmissionReview in a single pass. ok is
// false for anything it does not take; the caller then takes the generic
// path.
func readOnePass(body []byte, newObject NewObject) (rv Review, ok bool) {
	// json-iterator copies invalid UTF-8 into strings where the stock decoder
	// writes U+FFFD; such a body is rare enough to go the generic way.
	if !utf8.Valid(body) {
		return Review{}, false
	}
	api := JSON
	if bytes.IndexByte(body, '\\') < 0 {
		api = borrowing
	}
	it := api.BorrowIterator(body)
	defer api.ReturnIterator(it)
	borrow := api == borrowing
	var sawKind, sawRequest bool
	var seen keySet
	complete := it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		if !seen.first(key) {
			return false
		}
		switch key {
		case "apiVersion":
			rv.APIVersion = readString(it, borrow)
		case "kind":
			sawKind = readString(it, borrow) == "AdmissionReview"
			return sawKind
		case "request":
			sawRequest = !it.ReadNil() && readRequest(it, borrow, &rv, newObject)
			return sawRequest
		default:
			if isEnvelopeKey(key) {
				return false
			}
			it.Skip()
		}
		return it.Error == nil
	})
	if !complete || it.Error != nil && it.Error != io.EOF || !sawKind || !sawRequest {
		return Review{}, false
	}
	// Nothing may follow the review.
	if it.WhatIsNext() != jsoniter.InvalidValue {
		return Review{}, false
	}
	return rv, true
}

// readRequest reads every field of an admissionv1.AdmissionRequest. Keys the
// type does not have are skipped, as the stock decoder skips them; a field
// added to the type must be added here, or FuzzReadMatchesStock fails.
func readRequest(it *jsoniter.Iterator, borrow bool, rv *Review, newObject NewObject) bool {
	r := &rv.Request
	var seen keySet
	return it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		if !seen.first(key) {
			return false
		}
		switch key {
		case "uid":
			r.UID = types.UID(readString(it, borrow))
		case "kind":
			it.ReadVal(&r.Kind)
		case "resource":
			it.ReadVal(&r.Resource)
		case "subResource":
			r.SubResource = readString(it, borrow)
		case "requestKind":
			r.RequestKind = readPointer[metav1.GroupVersionKind](it)
		case "requestResource":
			r.RequestResource = readPointer[metav1.GroupVersionResource](it)
		case "requestSubResource":
			r.RequestSubResource = readString(it, borrow)
		case "name":
			r.Name = readString(it, borrow)
		case "namespace":
			r.Namespace = readString(it, borrow)
		case "operation":
			r.Operation = admissionv1.Operation(readString(it, borrow))
		case "userInfo":
			it.ReadVal(&r.UserInfo)
		case "object":
			rv.Object = readObject(it, r.Kind, &r.Object, newObject)
		case "oldObject":
			rv.OldObject = readObject(it, r.Kind, &r.OldObject, newObject)
		case "dryRun":
			r.DryRun = readPointer[bool](it)
		case "options":
			r.Options.Raw = readRaw(it)
		default:
			it.Skip()
		}
		return it.Error == nil
	})
}

// keySet remembers the keys of one JSON object read so far. A repeated key
// would merge into what the first one decoded where the stock decoder merges
// differently (it replaces a raw object, merges a struct): readers leave such
// bodies to the generic path.
type keySet struct {
	keys [24]string
	n    int
	more map[string]bool
}

// first reports whether key is new, and remembers it.
func (s *keySet) first(key string) bool {
	for _, k := range s.keys[:s.n] {
		if k == key {
			return false
		}
	}
	if s.more[key] {
		return false
	}
	if s.n < len(s.keys) {
		s.keys[s.n] = key
		s.n++
		return true
	}
	if s.more == nil {
		s.more = map[string]bool{}
	}
	s.more[key] = true
	return true
}

// readPointer reads an optional field: null leaves it nil, as the stock
// decoder does.
func readPointer[T any](it *jsoniter.Iterator) *T {
	if it.ReadNil() {
		return nil
	}
	v := new(T)
	it.ReadVal(v)
	return v
}

// readObject decodes an object into the Go type of kind, or keeps it raw
// when kind has none (or is not known yet: request.kind comes first in what
// the API server writes).
func readObject(it *jsoniter.Iterator, kind metav1.GroupVersionKind, raw *runtime.RawExtension, newObject NewObject) runtime.Object {
	if it.ReadNil() {
		return nil
	}
	obj := newObject(schema.GroupKind{Group: kind.Group, Kind: kind.Kind})
	if obj == nil {
		raw.Raw = readRaw(it)
		return nil
	}
	it.ReadVal(obj)
	return obj
}

// readRaw returns a copy of the next value's bytes, nil for null: what
// runtime.RawExtension's UnmarshalJSON keeps, without copying twice.
func readRaw(it *jsoniter.Iterator) []byte {
	if it.ReadNil() {
		return nil
	}
	return it.SkipAndReturnBytes() // a copy of its own
}

// answerJSON encodes answers byte for byte as encoding/json does (sorted
// map keys, HTML escaped), about twice as fast; TestWriteAsEncodingJSON
// holds it.
var answerJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// Write writes the answer to a review of apiVersion.
func Write(w http.ResponseWriter, apiVersion string, resp *admissionv1.AdmissionResponse) {
	w.Header().Set("Content-Type", "application/json")
	// What Encoder.Encode writes, through a pooled stream rather than a
	// new encoder and its buffer per answer.
	stream := answerJSON.BorrowStream(w)
	defer answerJSON.ReturnStream(stream)
	stream.WriteVal(envelope{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"},
		Response: resp,
	})
	stream.WriteRaw("\n")
	_ = stream.Flush()
}

// EncodePatch encodes a JSON patch byte for byte as controller-runtime's
// Response.Complete does, in one pass: Complete has encoding/json call
// jsonpatch.Operation's MarshalJSON per operation, which encodes the
// operation on its own and has the result scanned and copied again. The
// values are Kubernetes types whose fields say omitzero, which
// json-iterator does not honour, so encoding/json it stays.
func EncodePatch(ops []jsonpatch.Operation) ([]byte, error) {
	type withNull struct {
		Operation string `json:"op"`
		Path      string `json:"path"`
		Value     any    `json:"value"`
	}
	type withoutNull struct {
		Operation string `json:"op"`
		Path      string `json:"path"`
		Value     any    `json:"value,omitempty"`
	}
	list := make([]any, len(ops))
	for i, op := range ops {
		// An add or replace writes "value": null rather than no value.
		if op.Value == nil && (op.Operation == "add" || op.Operation == "replace") {
			list[i] = withNull{Operation: op.Operation, Path: op.Path}
			continue
		}
		list[i] = withoutNull{Operation: op.Operation, Path: op.Path, Value: op.Value}
	}
	return json.Marshal(list)
}
