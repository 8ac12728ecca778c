package policy

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// The mutations are JSON patch operations written directly against the raw
// request object, not a diff of two documents: a diff costs time proportional
// to the whole object on every request, and re-marshalling the typed object
// would drop the fields statekeeper's Go types do not know.
//
// A patch against the raw object must only address paths that exist in it. The
// typed view cannot tell an absent member from an empty one (a nil map may be
// absent, `null` or `{}` in the raw JSON), so the builder treats every empty
// container as possibly absent and adds it whole with an "add", which RFC 6902
// defines both for a missing member and for replacing an existing one.

// pathStep is one member on the way to a value: its key and whether the typed
// object proves that the member exists in the raw JSON (non-empty).
type pathStep struct {
	key     string
	present bool
}

func step(key string, present bool) pathStep { return pathStep{key: key, present: present} }

// patchBuilder collects the operations of one mutation pass in order.
type patchBuilder struct {
	ops []jsonpatch.Operation
	// created holds the pointers of the containers this patch added, so that a
	// later operation writes into them instead of replacing them.
	created map[string]bool
}

// set writes value at the member named by steps (the last step is the member
// itself). The first container on the way that may be absent is added whole,
// with value nested inside it. The member is replaced only when the typed
// object proves it exists.
func (p *patchBuilder) set(value any, steps ...pathStep) {
	path := ""
	for i, s := range steps {
		path += "/" + escapePointer(s.key)
		exists := s.present || p.created[path]
		if i == len(steps)-1 {
			op := "add"
			if s.present {
				op = "replace"
			}
			p.ops = append(p.ops, jsonpatch.NewOperation(op, path, value))
			return
		}
		if !exists {
			p.addNested(path, steps[i+1:], value)
			return
		}
	}
}

// appendItems appends items to the array named by steps, adding the array
// whole when it may be absent or empty. It is a function, not a method, so
// that the whole array keeps the items' type.
func appendItems[T any](p *patchBuilder, items []T, steps ...pathStep) {
	if len(items) == 0 || len(steps) == 0 {
		return
	}
	if !steps[len(steps)-1].present {
		p.set(items, steps...)
		return
	}
	path := pointer(keys(steps)...)
	for _, item := range items {
		p.ops = append(p.ops, jsonpatch.NewOperation("add", path+"/-", item))
	}
}

// member is one key of a string map (labels, annotations) to write, and
// whether the typed object proves the key is present.
type member struct {
	key, value string
	present    bool
}

// setMembers writes members into the string map named by steps: a map that
// may be absent is added whole, with every member, in one operation; in a map
// that exists each member is added or replaced on its own.
func (p *patchBuilder) setMembers(members []member, steps ...pathStep) {
	if len(members) == 0 || len(steps) == 0 {
		return
	}
	if !steps[len(steps)-1].present && !p.created[pointer(keys(steps)...)] {
		whole := make(map[string]string, len(members))
		for _, m := range members {
			whole[m.key] = m.value
		}
		p.set(whole, steps...)
		return
	}
	for _, m := range members {
		p.set(m.value, append(steps[:len(steps):len(steps)], step(m.key, m.present))...)
	}
}

// addNested adds, at path, the objects named by rest with value innermost.
func (p *patchBuilder) addNested(path string, rest []pathStep, value any) {
	nested := value
	for i := len(rest) - 1; i >= 0; i-- {
		nested = map[string]any{rest[i].key: nested}
	}
	p.ops = append(p.ops, jsonpatch.NewOperation("add", path, nested))
	if p.created == nil {
		p.created = map[string]bool{}
	}
	p.created[path] = true
	for _, s := range rest {
		path += "/" + escapePointer(s.key)
		p.created[path] = true
	}
}

func keys(steps []pathStep) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.key
	}
	return out
}

// pointer joins keys into a JSON pointer (RFC 6901).
func pointer(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteByte('/')
		b.WriteString(escapePointer(k))
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// escapePointer escapes one reference token: label keys such as
// "statekeeper.io/deploy-type" contain a slash.
func escapePointer(key string) string { return pointerEscaper.Replace(key) }
