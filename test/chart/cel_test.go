package chart

import (
	"encoding/json"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestWorkloadMatchConditions evaluates the rendered match conditions of the
// workload entries as the API server does (CEL over object and oldObject as
// untyped JSON, null where the operation has none) for the objects that
// reach them: which writes each entry is sent, and that none of them makes
// an expression fail, which in an entry that fails closed refuses the write.
func TestWorkloadMatchConditions(t *testing.T) {
	matches := matchConditions(t, mustRender(t))
	// sent reports whether the API server calls entry: every condition holds.
	sent := func(t *testing.T, entry string, object, oldObject string) bool {
		t.Helper()
		return matches(t, entry, decodeJSON(t, object), decodeJSON(t, oldObject))
	}

	const (
		none     = "null"
		bare     = `{"metadata":{"name":"w"}}`
		plain    = `{"metadata":{"name":"w","labels":{"app":"w"}},"spec":{"template":{"metadata":{"labels":{"app":"w"}}}}}`
		noMeta   = `{"metadata":{"name":"w"},"spec":{"template":{"spec":{}}}}`
		own      = `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateful-multi"}},"spec":{"template":{}}}`
		template = `{"metadata":{"name":"w"},"spec":{"template":{"metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-multi"}}}}}`
		// Only other keys of statekeeper's: not managed.
		quorumOnly = `{"metadata":{"name":"w","annotations":{"statekeeper.io/quorum":"true"}},"spec":{"template":{"metadata":{"annotations":{"statekeeper.io/quorum":"true"}}}}}`

		protectedOwn      = `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateful-multi"},"annotations":{"statekeeper.io/protect":"true"}}}`
		protectedTemplate = `{"metadata":{"name":"w"},"spec":{"template":{"metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-multi"},"annotations":{"statekeeper.io/protect":"true"}}}}}`
		// The workload's own "false" wins over its template's "true".
		unprotectedOwn = `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateful-multi"},"annotations":{"statekeeper.io/protect":"false"}},` +
			`"spec":{"template":{"metadata":{"annotations":{"statekeeper.io/protect":"true"}}}}}`
		protectedUnmanaged = `{"metadata":{"name":"w","annotations":{"statekeeper.io/protect":"true"}},"spec":{"template":{}}}`
	)
	const (
		mutate      = "workloads.mutate.statekeeper.io"
		mutateWarn  = "workloads-warn.mutate.statekeeper.io"
		validate    = "workloads.validate.statekeeper.io"
		unlabelled  = "unlabelled-workloads.validate.statekeeper.io"
		deletions   = "deletions.validate.statekeeper.io"
		nsDeletions = "namespace-deletions.validate.statekeeper.io"
		claims      = "claims.mutate.statekeeper.io"
	)
	tests := []struct {
		name              string
		object, oldObject string
		want              map[string]bool
	}{
		{name: "CREATE unlabelled", object: plain, oldObject: none,
			want: map[string]bool{mutate: false, mutateWarn: false, validate: false, unlabelled: true}},
		{name: "CREATE without labels nor template metadata", object: noMeta, oldObject: none,
			want: map[string]bool{mutate: false, validate: false, unlabelled: true}},
		{name: "CREATE without a spec", object: bare, oldObject: none,
			want: map[string]bool{mutate: false, validate: false, unlabelled: true}},
		{name: "CREATE with statekeeper's other keys only", object: quorumOnly, oldObject: none,
			want: map[string]bool{mutate: false, validate: false, unlabelled: true}},
		{name: "CREATE labelled", object: own, oldObject: none,
			want: map[string]bool{mutate: true, mutateWarn: true, validate: true, unlabelled: false}},
		{name: "CREATE labelled on the pod template", object: template, oldObject: none,
			want: map[string]bool{mutate: true, mutateWarn: true, validate: true, unlabelled: false}},
		{name: "UPDATE removing the label", object: plain, oldObject: own,
			want: map[string]bool{mutate: true, validate: true}},
		{name: "UPDATE removing the pod template's label", object: plain, oldObject: template,
			want: map[string]bool{mutate: true, validate: true}},
		{name: "UPDATE labelling", object: template, oldObject: plain,
			want: map[string]bool{mutate: true, validate: true}},
		{name: "UPDATE of an unlabelled workload", object: noMeta, oldObject: plain,
			want: map[string]bool{mutate: false, validate: false}},
		{name: "DELETE protected", object: none, oldObject: protectedOwn,
			want: map[string]bool{deletions: true, nsDeletions: false}},
		{name: "DELETE protected and labelled on the pod template", object: none, oldObject: protectedTemplate,
			want: map[string]bool{deletions: true, nsDeletions: false}},
		{name: "DELETE with the workload's own protect false", object: none, oldObject: unprotectedOwn,
			want: map[string]bool{deletions: false, nsDeletions: true}},
		{name: "DELETE managed, not protected", object: none, oldObject: own,
			want: map[string]bool{deletions: false, nsDeletions: true}},
		{name: "DELETE unmanaged", object: none, oldObject: protectedUnmanaged,
			want: map[string]bool{deletions: false, nsDeletions: false}},
		{name: "DELETE without a spec", object: none, oldObject: bare,
			want: map[string]bool{deletions: false, nsDeletions: false}},
		// Claims: the StatefulSet controller names them <template>-<statefulset>-<ordinal>
		// and labels them with the StatefulSet's selector.
		{name: "CREATE of a StatefulSet's claim", object: `{"metadata":{"name":"data-db-0","labels":{"app":"db"}}}`, oldObject: none,
			want: map[string]bool{claims: true}},
		{name: "CREATE of a claim without labels", object: `{"metadata":{"name":"data-db-0"}}`, oldObject: none,
			want: map[string]bool{claims: false}},
		{name: "CREATE of a claim of no ordinal", object: `{"metadata":{"name":"data-db","labels":{"app":"db"}}}`, oldObject: none,
			want: map[string]bool{claims: false}},
		{name: "CREATE of a claim named by generateName", object: `{"metadata":{"generateName":"data-","labels":{"app":"db"}}}`, oldObject: none,
			want: map[string]bool{claims: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]bool{}
			for entry := range tt.want {
				got[entry] = sent(t, entry, tt.object, tt.oldObject)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// matchConditions evaluates the match conditions of the webhook entries of
// manifest as the API server does (CEL over object and oldObject as untyped
// JSON, null where the operation has none, with optional types): it reports
// whether entry is called for a write, every condition holding, and fails
// the test when an expression fails, which in an entry that fails closed
// refuses the write.
func matchConditions(t *testing.T, manifest string) func(t *testing.T, entry string, object, oldObject any) bool {
	t.Helper()
	conditions := map[string][]admissionregistrationv1.MatchCondition{}
	for _, w := range decodeOne[admissionregistrationv1.MutatingWebhookConfiguration](t, manifest, "MutatingWebhookConfiguration").Webhooks {
		conditions[w.Name] = w.MatchConditions
	}
	for _, w := range decodeOne[admissionregistrationv1.ValidatingWebhookConfiguration](t, manifest, "ValidatingWebhookConfiguration").Webhooks {
		conditions[w.Name] = w.MatchConditions
	}
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType), cel.Variable("oldObject", cel.DynType), cel.OptionalTypes())
	require.NoError(t, err)
	return func(t *testing.T, entry string, object, oldObject any) bool {
		t.Helper()
		require.NotEmpty(t, conditions[entry], "entry %s has no match conditions", entry)
		all := true
		for _, c := range conditions[entry] {
			ast, issues := env.Compile(c.Expression)
			require.NoError(t, issues.Err(), "%s: %s", entry, c.Name)
			program, err := env.Program(ast)
			require.NoError(t, err)
			out, _, err := program.Eval(map[string]any{"object": object, "oldObject": oldObject})
			require.NoError(t, err, "%s: %s evaluates to an error", entry, c.Name)
			matched, ok := out.Value().(bool)
			require.True(t, ok, "%s: %s is not a bool", entry, c.Name)
			all = all && matched
		}
		return all
	}
}

func decodeJSON(t *testing.T, doc string) any {
	t.Helper()
	var out any
	require.NoError(t, json.Unmarshal([]byte(doc), &out))
	return out
}

// TestUpdateMatchCondition evaluates the workload entries' match conditions
// where the chart renders its admission policy: an UPDATE of a managed
// workload that changes nothing a lookup-requiring rule or a mutation reads
// is sent to neither workload entry (the policy decides it alone), every
// other write still is, and no input makes an expression fail.
func TestUpdateMatchCondition(t *testing.T) {
	sent := matchConditions(t, mustRender(t, "--api-versions", validatingAdmissionPolicy))

	// stored is a managed StatefulSet as the API server stores it, mutated.
	const stored = `{"metadata":{"name":"db","labels":{"app":"db","statekeeper.io/deploy-type":"stateful-multi"},
		"annotations":{"statekeeper.io/storage-size":"1Gi","owner":"team-a"}},
		"spec":{"replicas":3,"serviceName":"db-headless","podManagementPolicy":"OrderedReady",
		"updateStrategy":{"type":"RollingUpdate"},
		"volumeClaimTemplates":[{"metadata":{"name":"data","annotations":{"statekeeper.io/injected":"true"}},"spec":{"accessModes":["ReadWriteOnce"]}}],
		"template":{"metadata":{"labels":{"app":"db","statekeeper.io/deploy-type":"stateful-multi"}},
		"spec":{"initContainers":[{"name":"init","image":"busybox:1"}],
		"containers":[{"name":"db","image":"postgres:16","volumeMounts":[{"name":"data","mountPath":"/data"}]}],
		"volumes":[{"name":"config","configMap":{"name":"db"}}]}}}}`
	changed := func(edit func(o map[string]any)) any {
		o := decodeJSON(t, stored).(map[string]any)
		edit(o)
		return o
	}
	at := func(o map[string]any, path ...string) map[string]any {
		for _, p := range path {
			o = o[p].(map[string]any)
		}
		return o
	}
	container := func(o map[string]any) map[string]any {
		return at(o, "spec", "template", "spec")["containers"].([]any)[0].(map[string]any)
	}
	const (
		mutate     = "workloads.mutate.statekeeper.io"
		validate   = "workloads.validate.statekeeper.io"
		mutateWarn = "workloads-warn.mutate.statekeeper.io"
	)
	tests := []struct {
		name   string
		object any
		old    any
		want   bool
		// validateOnly: only the validating entry is sent it.
		validateOnly bool
	}{
		{name: "CREATE", object: decodeJSON(t, stored), old: nil, want: true},
		{name: "UPDATE changing nothing", object: decodeJSON(t, stored), old: decodeJSON(t, stored), want: false},
		{name: "UPDATE of the image", want: false, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { container(o)["image"] = "postgres:17" })},
		{name: "UPDATE restarting the rollout", want: false, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) {
				at(o, "spec", "template", "metadata")["annotations"] = map[string]any{"kubectl.kubernetes.io/restartedAt": "2026-12-07T21:00:00Z"}
			})},
		{name: "UPDATE of an annotation that is not statekeeper's", want: false, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { at(o, "metadata", "annotations")["owner"] = "team-b" })},
		{name: "UPDATE of the update strategy of a StatefulSet", want: false, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { at(o, "spec")["updateStrategy"] = map[string]any{"type": "OnDelete"} })},
		// No mutation reads replicas: a scale-up by UPDATE meets the policy
		// before any entry that fails closed.
		{name: "UPDATE of the replicas", want: true, validateOnly: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { at(o, "spec")["replicas"] = 4 })},
		{name: "UPDATE of a statekeeper annotation", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { at(o, "metadata", "annotations")["statekeeper.io/storage-size"] = "2Gi" })},
		{name: "UPDATE adding a statekeeper annotation", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { at(o, "metadata", "annotations")["statekeeper.io/inject-env"] = "true" })},
		{name: "UPDATE adding a statekeeper annotation on the pod template", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) {
				at(o, "spec", "template", "metadata")["annotations"] = map[string]any{"statekeeper.io/quorum": "true"}
			})},
		{name: "UPDATE removing the deploy type", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) {
				delete(at(o, "metadata", "labels"), "statekeeper.io/deploy-type")
			})},
		{name: "UPDATE without the pod template's deploy type (a carry-over)", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) {
				delete(at(o, "spec", "template", "metadata", "labels"), "statekeeper.io/deploy-type")
			})},
		{name: "UPDATE without the injected claim templates (a carry-over)", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { delete(at(o, "spec"), "volumeClaimTemplates") })},
		{name: "UPDATE without the serviceName (a carry-over)", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { delete(at(o, "spec"), "serviceName") })},
		{name: "UPDATE of the volumes", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { delete(at(o, "spec", "template", "spec"), "volumes") })},
		{name: "UPDATE of a container's mounts", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) { delete(container(o), "volumeMounts") })},
		{name: "UPDATE of an init container's mounts", want: true, old: decodeJSON(t, stored),
			object: changed(func(o map[string]any) {
				at(o, "spec", "template", "spec")["initContainers"].([]any)[0].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": "data", "mountPath": "/d"}}
			})},
		{name: "UPDATE of a Deployment's strategy", want: true,
			old:    decodeJSON(t, `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{"strategy":{"type":"RollingUpdate"}}}`),
			object: decodeJSON(t, `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{"strategy":{"type":"Recreate"}}}`)},
		{name: "UPDATE of a workload without metadata maps or a template", want: false,
			old:    decodeJSON(t, `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{}}`),
			object: decodeJSON(t, `{"metadata":{"name":"w","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]bool{}
			for _, entry := range []string{mutate, validate, mutateWarn} {
				got[entry] = sent(t, entry, tt.object, tt.old)
			}
			mutated := tt.want && !tt.validateOnly
			assert.Equal(t, map[string]bool{mutate: mutated, validate: tt.want, mutateWarn: mutated}, got)
		})
	}
}
