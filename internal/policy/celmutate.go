package policy

import (
	"fmt"
	"strings"
)

// The StatefulSet mutations of MutateWorkload that need no lookup, as the
// JSONPatch mutations of a MutatingAdmissionPolicy: the API server applies
// them in-process, so a managed StatefulSet gets its headless Service name,
// its claim templates and its pod template label, and an UPDATE keeps them,
// while the webhook is down. Each expression computes the operations the Go
// mutator of the same name adds, and none on its own output, so the webhook
// (which runs after the policy) adds nothing more.
//
// Not here: keepTemplateSizes (it merges the claim sizes recorded in a JSON
// annotation of the stored object with the resized templates', comparing
// quantities: CEL cannot write the record back as the webhook encodes it)
// and recreateForSingleNodeClaims (it reads the claims, a lookup).
// A serviceName whose default needs hashing (HeadlessServiceName of a name
// longer than 54 characters) is left to the webhook: CEL has no SHA-256.

// CELMutation is one mutation of the policy: Expression evaluates to the
// list of JSONPatch operations Mutator adds (empty when it adds none).
type CELMutation struct {
	Mutator    string
	Expression string
}

// CELMutationVariables are the variables the mutations read, after
// CELVariables.
func CELMutationVariables() []CELVariable {
	// Mutable: managed, a type that runs as a StatefulSet, and usable
	// annotations (the invalid-annotation checks of CELValidations).
	var usable []string
	for _, v := range CELValidations() {
		if v.Rule == RuleInvalidAnnotation {
			usable = append(usable, "("+v.Expression+")")
		}
	}
	const spec = "object.spec.?template.?spec"
	return []CELVariable{
		{"mutable", fmt.Sprintf("variables.managed && variables.validType && variables.typeKind == %s && %s",
			celString(string(KindStatefulSet)), strings.Join(usable, " && "))},
		{"templateNames", "object.spec.?volumeClaimTemplates.orValue([]).map(t, t.metadata.?name.orValue(''))"},
		// UnresolvedMounts: init containers first, each name once.
		{"unresolved", fmt.Sprintf("(%[1]s.?initContainers.orValue([]) + %[1]s.?containers.orValue([]))"+
			".map(c, c.?volumeMounts.orValue([]).map(m, m.name)).flatten()"+
			".filter(n, n != '' && !(n in %[1]s.?volumes.orValue([]).map(v, v.name)) && !(n in variables.templateNames))"+
			".distinct()", spec)},
		{"templateLabel", "object.spec.?template.?metadata.?labels[?" + celString(LabelDeployType) + "]"},
	}
}

// CELMutations are the policy's mutations in MutateWorkload's order.
// defaultSize and defaultClass are CEL string expressions of the
// --default-storage-size and --default-storage-class flags (the chart
// renders its values in).
func CELMutations(defaultSize, defaultClass string) []CELMutation {
	const (
		create = "variables.mutable && request.operation == 'CREATE'"
		update = "variables.mutable && request.operation == 'UPDATE'"
	)
	noServiceName := "object.spec.?serviceName.orValue('') == ''"
	// HeadlessServiceName without hashing.
	headless := "object.metadata.name + " + celString(HeadlessServiceName(""))
	storageClass := fmt.Sprintf("variables.storageClass.orValue(%s)", defaultClass)
	// Typed: the API server's CEL takes no literal of mixed value types.
	const t = "Object.spec.volumeClaimTemplates"
	newClaim := fmt.Sprintf("%[1]s{metadata: %[1]s.metadata{name: n, annotations: {%[2]s: 'true'}}, "+
		"spec: %[1]s.spec{accessModes: ['ReadWriteOnce'], resources: %[1]s.spec.resources{requests: {'storage': variables.storageSize.orValue(%[3]s)}}, "+
		"?storageClassName: %[4]s == '' ? optional.none() : optional.of(%[4]s)}}",
		t, celString(AnnotationInjected), defaultSize, storageClass)
	stored := "oldObject.spec.?volumeClaimTemplates.orValue([])"
	storedClaim := stored + ".filter(t, t.metadata.?name.orValue('') == n)[0]"

	return []CELMutation{
		{"defaultServiceName", fmt.Sprintf("%s && %s && size(%s) <= %d ? [%s] : []",
			create, noServiceName, headless, maxServiceName, jsonPatchAdd("'/spec/serviceName'", headless))},
		{"injectClaimTemplates", fmt.Sprintf("%s ? %s : []", create, appendTemplates("variables.unresolved", newClaim))},
		{"labelPodTemplate", fmt.Sprintf("%s && !variables.templateLabel.hasValue() ? %s : []", create, setTemplateLabel("variables.type"))},
		{"keepServiceName", fmt.Sprintf("%s && %s && oldObject.spec.?serviceName.orValue('') != '' ? [%s] : []",
			update, noServiceName, jsonPatchAdd("'/spec/serviceName'", "oldObject.spec.serviceName"))},
		{"keepClaimTemplates", fmt.Sprintf("%s ? %s : []", update,
			appendTemplates(fmt.Sprintf("variables.unresolved.filter(n, %s.exists(t, t.metadata.?name.orValue('') == n))", stored), storedClaim))},
		{"keepPodTemplateLabel", fmt.Sprintf("%s && !variables.templateLabel.hasValue() && %s.hasValue() ? %s : []",
			update, storedTemplateLabel, setTemplateLabel(storedTemplateLabel+".value()"))},
	}
}

var storedTemplateLabel = "oldObject.spec.?template.?metadata.?labels[?" + celString(LabelDeployType) + "]"

func jsonPatchAdd(path, value string) string {
	return fmt.Sprintf("JSONPatch{op: 'add', path: %s, value: %s}", path, value)
}

// appendTemplates appends one claim template per name of names (a CEL
// list), template being the CEL of the template named n, item by item; to
// an object without templates, after an empty list. (A list of templates as
// one value would be shorter, but the API server's JSONPatch cannot convert
// a list of typed objects: Kubernetes 1.36.3 fails the request with a
// recovered panic, "reflect.Set: value of type *structpb.Struct is not
// assignable to type *structpb.Value".)
func appendTemplates(names, template string) string {
	return fmt.Sprintf("(size(%[1]s) == 0 ? [] : (size(variables.templateNames) > 0 ? [] : [%[3]s]) + %[1]s.map(n, %[2]s))",
		names, jsonPatchAdd("'/spec/volumeClaimTemplates/-'", template),
		jsonPatchAdd("'/spec/volumeClaimTemplates'", "[]"))
}

// setTemplateLabel adds the deploy-type label to the pod template, creating
// its metadata or labels when the object lacks them (setTemplateLabel).
func setTemplateLabel(value string) string {
	key := celString(LabelDeployType)
	return fmt.Sprintf("(object.spec.?template.?metadata.?labels.hasValue() ? [%s] : "+
		"(object.spec.?template.?metadata.hasValue() ? [%s] : [%s]))",
		jsonPatchAdd("'/spec/template/metadata/labels/' + jsonpatch.escapeKey("+key+")", value),
		jsonPatchAdd("'/spec/template/metadata/labels'", "{"+key+": "+value+"}"),
		jsonPatchAdd("'/spec/template/metadata'", "{'labels': {"+key+": "+value+"}}"))
}
