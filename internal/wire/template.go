package wire

import (
	"reflect"
	"slices"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
	corev1 "k8s.io/api/core/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Of a pod template's containers (a Deployment's or a StatefulSet's) the
// readers decode only policy.ContainerFields, the fields statekeeper reads;
// the others (image, command, environment, resources, probes) are checked
// to be well-formed JSON and skipped. A large workload is mostly its
// containers' environment: decoding a 66 kB StatefulSet's 1,100 variables
// was most of the time of reading its review, and of the garbage it left.
// A pod's own containers (what /mutate-pods reads) are decoded whole.
//
// json-iterator builds one decoder per Go type, so the trim cannot tell a
// template's containers from a pod's within one configuration: each reader
// decodes a template's spec with a second configuration whose containers
// are trimmed (newAPI).

// newAPI returns a reader configuration that decodes pod templates with
// trimmed containers; borrow makes its strings point into the body
// (borrowing).
func newAPI(borrow bool) jsoniter.API {
	cfg := jsoniter.Config{EscapeHTML: true, CaseSensitive: true, ObjectFieldMustBeSimpleString: borrow}
	templates := cfg.Froze()
	api := cfg.Froze()
	fields := &readContainerFields{}
	if borrow {
		templates.RegisterExtension(&borrowStrings{})
		api.RegisterExtension(&borrowStrings{})
		fields.skip = skipUnread{}
	}
	templates.RegisterExtension(fields)
	api.RegisterExtension(&templateSpecs{
		decoder: templates.DecoderOf(reflect2.TypeOf((*corev1.PodSpec)(nil))),
	})
	return api
}

// readContainerFields leaves a container's fields but policy.ContainerFields
// unread: with skip set, skip decodes them (skipUnread, which scans the
// body itself); otherwise they have no name, so that json-iterator skips
// them as it skips unknown keys.
type readContainerFields struct {
	jsoniter.DummyExtension
	skip jsoniter.ValDecoder
}

func (e *readContainerFields) UpdateStructDescriptor(d *jsoniter.StructDescriptor) {
	for _, b := range fieldsOf[corev1.Container](d) {
		read := slices.ContainsFunc(b.FromNames, func(name string) bool {
			return slices.Contains(policy.ContainerFields, name)
		})
		switch {
		case read:
		case e.skip != nil:
			b.Decoder = e.skip
		default:
			b.FromNames = nil
		}
	}
}

// templateSpecs decodes a pod template's spec with decoder, the trimming
// configuration's.
type templateSpecs struct {
	jsoniter.DummyExtension
	decoder jsoniter.ValDecoder
}

func (e *templateSpecs) UpdateStructDescriptor(d *jsoniter.StructDescriptor) {
	for _, b := range fieldsOf[corev1.PodTemplateSpec](d) {
		if slices.Contains(b.FromNames, "spec") {
			b.Decoder = e.decoder
		}
	}
}

// fieldsOf returns the fields d describes when it is the struct T, none
// otherwise: the extensions change the decoding of one type each.
func fieldsOf[T any](d *jsoniter.StructDescriptor) []*jsoniter.Binding {
	if d.Type.Type1() != reflect.TypeFor[T]() {
		return nil
	}
	return d.Fields
}
