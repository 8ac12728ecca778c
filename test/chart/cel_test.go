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
	manifest := mustRender(t)
	conditions := map[string][]admissionregistrationv1.MatchCondition{}
	for _, w := range decodeOne[admissionregistrationv1.MutatingWebhookConfiguration](t, manifest, "MutatingWebhookConfiguration").Webhooks {
		conditions[w.Name] = w.MatchConditions
	}
	for _, w := range decodeOne[admissionregistrationv1.ValidatingWebhookConfiguration](t, manifest, "ValidatingWebhookConfiguration").Webhooks {
		conditions[w.Name] = w.MatchConditions
	}
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType), cel.Variable("oldObject", cel.DynType))
	require.NoError(t, err)
	// sent reports whether the API server calls entry: every condition holds.
	sent := func(t *testing.T, entry string, object, oldObject string) bool {
		t.Helper()
		require.NotEmpty(t, conditions[entry], "entry %s has no match conditions", entry)
		vars := map[string]any{"object": decodeJSON(t, object), "oldObject": decodeJSON(t, oldObject)}
		all := true
		for _, c := range conditions[entry] {
			ast, issues := env.Compile(c.Expression)
			require.NoError(t, issues.Err(), "%s: %s", entry, c.Name)
			program, err := env.Program(ast)
			require.NoError(t, err)
			out, _, err := program.Eval(vars)
			require.NoError(t, err, "%s: %s evaluates to an error", entry, c.Name)
			matched, ok := out.Value().(bool)
			require.True(t, ok, "%s: %s is not a bool", entry, c.Name)
			all = all && matched
		}
		return all
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

func decodeJSON(t *testing.T, doc string) any {
	t.Helper()
	var out any
	require.NoError(t, json.Unmarshal([]byte(doc), &out))
	return out
}
