package wire

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
)

// borrowing decodes as JSON does, except that a string is not copied out of
// the body: it points into it. Decoding the object of a review is mostly
// making strings (names, labels, every environment variable), so this halves
// the allocations of a review and the garbage collector's work.
//
// It is safe only where the body is never written again and the strings do
// not outlive what they describe by much (a string keeps the whole body
// alive): Read owns the body it reads, and nothing statekeeper keeps beyond
// a request is a string of a request. It is also right only for a body
// without escapes (a backslash), where the bytes between the quotes are the
// string: readOnePass checks that before choosing it. For the same reason
// it reads the objects' keys without copying them
// (ObjectFieldMustBeSimpleString).
var borrowing = newAPI(true)

// borrowStrings decodes every string-kinded type that has no decoding of
// its own (UnmarshalJSON, UnmarshalText) with borrowedString.
type borrowStrings struct{ jsoniter.DummyExtension }

func (*borrowStrings) CreateDecoder(typ reflect2.Type) jsoniter.ValDecoder {
	t := typ.Type1()
	if t.Kind() != reflect.String {
		return nil
	}
	// The types are named here, not in package variables: the readers are
	// built while the package's variables are still being initialised.
	for _, u := range []reflect.Type{reflect.TypeFor[json.Unmarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()} {
		if t.Implements(u) || reflect.PointerTo(t).Implements(u) {
			return nil
		}
	}
	return borrowedString{}
}

type borrowedString struct{}

// Decode reads a string as json-iterator's own string decoder does, with
// the same errors, but without copying it; null leaves the string as it
// is, as encoding/json (the stock decoder) does.
func (borrowedString) Decode(ptr unsafe.Pointer, it *jsoniter.Iterator) {
	switch it.WhatIsNext() {
	case jsoniter.StringValue:
		// Without escapes in the body, the slice ends at the closing quote
		// and points into the body.
		b := it.ReadStringAsSlice()
		if hasControl(b) {
			it.ReportError("ReadString", "invalid control character found")
			return
		}
		*(*string)(ptr) = unsafe.String(unsafe.SliceData(b), len(b))
	case jsoniter.NilValue:
		it.ReadNil()
	default:
		*(*string)(ptr) = it.ReadString() // its error
	}
}

// readString reads a string, borrowed from the body when borrow is set.
func readString(it *jsoniter.Iterator, borrow bool) string {
	if !borrow {
		return it.ReadString()
	}
	var s string
	borrowedString{}.Decode(unsafe.Pointer(&s), it)
	return s
}

// hasControl reports whether b holds a byte below 0x20, which JSON does not
// allow in a string. Eight bytes at a time: the strings of a large object
// (environment variables, scripts) are most of its bytes.
func hasControl(b []byte) bool {
	const highs, spaces = 0x8080808080808080, 0x2020202020202020
	for len(b) >= 8 {
		// A byte below 0x20 borrows when 0x20 is subtracted and had its high
		// bit clear: the classic "has a byte less than n" test.
		x := binary.LittleEndian.Uint64(b)
		if (x-spaces)&^x&highs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < ' ' {
			return true
		}
	}
	return false
}
