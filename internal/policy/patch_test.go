package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"gomodules.xyz/jsonpatch/v2"
)

func TestPointer(t *testing.T) {
	tests := []struct {
		keys []string
		want string
	}{
		{keys: []string{"spec", "serviceName"}, want: "/spec/serviceName"},
		{keys: []string{"metadata", "labels", "statekeeper.io/deploy-type"}, want: "/metadata/labels/statekeeper.io~1deploy-type"},
		{keys: []string{"a~b/c", "~1"}, want: "/a~0b~1c/~01"},
		{keys: []string{""}, want: "/"},
		{keys: nil, want: ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, pointer(tt.keys...), "keys %q", tt.keys)
	}
}

func TestPatchBuilder(t *testing.T) {
	tests := []struct {
		name  string
		build func(p *patchBuilder)
		want  []jsonpatch.Operation
	}{
		{
			name:  "a present member is replaced",
			build: func(p *patchBuilder) { p.set("x", step("spec", true), step("strategy", true)) },
			want:  []jsonpatch.Operation{{Operation: "replace", Path: "/spec/strategy", Value: "x"}},
		},
		{
			name:  "an absent member is added",
			build: func(p *patchBuilder) { p.set("x", step("spec", true), step("serviceName", false)) },
			want:  []jsonpatch.Operation{{Operation: "add", Path: "/spec/serviceName", Value: "x"}},
		},
		{
			name: "the first absent container is added whole, and later writes go inside it",
			build: func(p *patchBuilder) {
				p.set("v1", step("spec", true), step("template", true), step("metadata", false), step("labels", false), step("a/b", false))
				p.set("v2", step("spec", true), step("template", true), step("metadata", false), step("labels", false), step("c~d", false))
			},
			want: []jsonpatch.Operation{
				{Operation: "add", Path: "/spec/template/metadata", Value: map[string]any{"labels": map[string]any{"a/b": "v1"}}},
				{Operation: "add", Path: "/spec/template/metadata/labels/c~0d", Value: "v2"},
			},
		},
		{
			name:  "items are appended to a present array",
			build: func(p *patchBuilder) { appendItems(p, []any{1, 2}, step("spec", true), step("list", true)) },
			want: []jsonpatch.Operation{
				{Operation: "add", Path: "/spec/list/-", Value: 1},
				{Operation: "add", Path: "/spec/list/-", Value: 2},
			},
		},
		{
			name:  "an absent array is added whole",
			build: func(p *patchBuilder) { appendItems(p, []any{1, 2}, step("spec", true), step("list", false)) },
			want:  []jsonpatch.Operation{{Operation: "add", Path: "/spec/list", Value: []any{1, 2}}},
		},
		{
			name: "members of an absent map are added with the map, in one operation",
			build: func(p *patchBuilder) {
				p.setMembers([]member{{key: "a", value: "1"}, {key: "b/c", value: "2"}}, step("metadata", false), step("annotations", false))
			},
			want: []jsonpatch.Operation{{Operation: "add", Path: "/metadata", Value: map[string]any{"annotations": map[string]string{"a": "1", "b/c": "2"}}}},
		},
		{
			name: "members of a present map are added or replaced one by one",
			build: func(p *patchBuilder) {
				p.setMembers([]member{{key: "a", value: "1", present: true}, {key: "b/c", value: "2"}}, step("metadata", true), step("annotations", true))
			},
			want: []jsonpatch.Operation{
				{Operation: "replace", Path: "/metadata/annotations/a", Value: "1"},
				{Operation: "add", Path: "/metadata/annotations/b~1c", Value: "2"},
			},
		},
		{
			name: "members of a map this patch created go inside it",
			build: func(p *patchBuilder) {
				p.set("x", step("metadata", true), step("annotations", false), step("first", false))
				p.setMembers([]member{{key: "second", value: "y"}}, step("metadata", true), step("annotations", false))
			},
			want: []jsonpatch.Operation{
				{Operation: "add", Path: "/metadata/annotations", Value: map[string]any{"first": "x"}},
				{Operation: "add", Path: "/metadata/annotations/second", Value: "y"},
			},
		},
		{
			name:  "nothing to append",
			build: func(p *patchBuilder) { appendItems[any](p, nil, step("spec", true), step("list", false)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p patchBuilder
			tt.build(&p)
			assert.Equal(t, tt.want, p.ops)
		})
	}
}
