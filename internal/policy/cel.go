package policy

import (
	"fmt"
	"slices"
	"strings"
)

// The rules the catalog marks CEL-decidable (RuleDoc.CEL), as the CEL of a
// ValidatingAdmissionPolicy: the API server decides them in-process, so they
// hold while the webhook is down. The expressions read only the object under
// review (what ValidateWorkload reads without a lookup), and each denial's
// message is the webhook's: messageExpression is derived from the message
// functions of messages.go, rendered with sentinel values that the CEL then
// computes (celMessage), so the wording lives in one place.

// CELVariable is a named CEL expression the validations share
// (spec.variables, read as variables.<name>).
type CELVariable struct {
	Name, Expression string
}

// CELValidation is one validation of the policy: Expression is true when
// the object passes; MessageExpression is the denial as Violation.String
// words it (the message, then the rule ID), which the API server shows
// after "denied request: ".
type CELValidation struct {
	Rule              Rule
	Expression        string
	MessageExpression string
}

// celKey is the CEL optional of a statekeeper key as EffectiveKeys reads it:
// the workload's own, or its pod template's when the workload lacks it.
// field is "labels" or "annotations"; of is "object" or "oldObject".
func celKey(of, field, key string) string {
	return fmt.Sprintf("%[1]s.metadata.?%[2]s[?%[3]s].or(%[1]s.spec.?template.?metadata.?%[2]s[?%[3]s])", of, field, celString(key))
}

// CELVariables are the policy's variables, in an order in which each reads
// only those before it.
func CELVariables() []CELVariable {
	single := make([]string, 0, 2)
	for _, t := range DeployTypes {
		if t.Single() {
			single = append(single, celString(string(t)))
		}
	}
	return []CELVariable{
		{"deployType", celKey("object", "labels", LabelDeployType)},
		{"managed", "variables.deployType.hasValue()"},
		{"type", "variables.deployType.orValue('')"},
		{"validType", celIn("variables.type", typeNames(DeployTypes))},
		{"single", celIn("variables.type", single)},
		{"typeKind", fmt.Sprintf("variables.type.startsWith('stateful-') ? %s : %s", celString(string(KindStatefulSet)), celString(string(KindDeployment)))},
		{"replicas", "object.spec.?replicas.orValue(1)"},
		{"storageSize", celKey("object", "annotations", AnnotationStorageSize)},
		{"storageClass", celKey("object", "annotations", AnnotationStorageClass)},
		{"quorum", celKey("object", "annotations", AnnotationQuorum)},
		{"injectEnv", celKey("object", "annotations", AnnotationInjectEnv)},
		{"externalVotes", celKey("object", "annotations", AnnotationQuorumExternalVotes)},
		// strconv.ParseInt(v, 10, 32) and not negative (quorumExternalVotes);
		// the pattern bounds the digits so that int() cannot overflow. The
		// string() is needed: the API server's int() finds no overload for
		// an optional's value as such (hack/celdiff fails without it).
		{"externalVotesValid", "!variables.externalVotes.hasValue() || " +
			"(variables.externalVotes.value().matches('^[+-]?0*[0-9]{1,10}$') && " +
			"int(string(variables.externalVotes.value())) >= 0 && int(string(variables.externalVotes.value())) <= 2147483647)"},
		{"external", "variables.externalVotes.hasValue() && variables.externalVotesValid ? int(string(variables.externalVotes.value())) : 0"},
		{"votes", "variables.replicas + variables.external"},
	}
}

// CELValidations are the lookup-free checks of ValidateWorkload, in its
// order of denials: the API server reports the first that fails, which is
// then the webhook's first denial too.
func CELValidations() []CELValidation {
	var out []CELValidation
	add := func(rule Rule, expression, message string) {
		// The whole of Violation.String: the message, then the rule ID.
		message = "(" + message + ") + " + celString(" ["+string(rule)+"]")
		out = append(out, CELValidation{Rule: rule, Expression: expression, MessageExpression: message})
	}

	// checkSingleInstance.
	add(RuleSingleInstance, "!variables.single || variables.replicas <= 1",
		celPerKind(func(k Kind) string {
			return msgSingleInstance(sentinelWorkload(k), sentinelType, sentinelReplicas)
		}, replicasParts))

	// checkKindMismatch: an unknown type, then a type of the other kind.
	add(RuleKindMismatch, "!variables.managed || variables.validType",
		celPerKind(func(k Kind) string {
			_, err := ParseDeployType(sentinelTypeValue)
			return msgInvalidDeployType(sentinelWorkload(k), err)
		}, nil))
	add(RuleKindMismatch, "!variables.managed || !variables.validType || variables.typeKind == request.kind.kind",
		celPerKind(func(k Kind) string {
			return msgKindMismatch(sentinelWorkload(k), sentinelTypeOf(k.Other()))
		}, labelledParts()))

	// checkQuorum: with the external votes the workload declares (and can
	// use), or without.
	add(RuleQuorum, "!variables.managed || variables.quorum.orValue('') != 'true' || "+
		"variables.replicas <= 0 || variables.votes < 2 || variables.votes % 2 != 0",
		"variables.externalVotes.hasValue() && variables.externalVotesValid ? "+
			celPerKind(func(k Kind) string {
				return msgQuorumWithExternalVotes(sentinelWorkload(k), QuorumVotes{Replicas: sentinelReplicas, External: sentinelExternal})
			}, votesParts)+" : "+
			celPerKind(func(k Kind) string {
				return msgQuorum(sentinelWorkload(k), sentinelReplicas)
			}, replicasParts))

	// checkAnnotations.
	add(RuleInvalidAnnotation, "!variables.managed || !variables.storageSize.hasValue() || "+
		"(isQuantity(variables.storageSize.value()) && quantity(variables.storageSize.value()).isGreaterThan(quantity('0')))",
		celPerKind(func(k Kind) string {
			return msgInvalidStorageSize(sentinelWorkload(k), sentinelValue)
		}, valueParts("variables.storageSize.value()")))
	add(RuleInvalidAnnotation, "!variables.managed || variables.storageClass.orValue('') == '' || "+
		"(size(variables.storageClass.value()) <= 253 && variables.storageClass.value().matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",
		celPerKind(func(k Kind) string {
			return msgInvalidStorageClass(sentinelWorkload(k), sentinelValue)
		}, valueParts("variables.storageClass.value()")))
	add(RuleInvalidAnnotation, "!variables.managed || variables.externalVotesValid",
		celPerKind(func(k Kind) string {
			return msgInvalidExternalVotes(sentinelWorkload(k), sentinelValue)
		}, valueParts("variables.externalVotes.value()")))
	for _, b := range []struct{ key, variable string }{
		{AnnotationQuorum, "variables.quorum"},
		{AnnotationInjectEnv, "variables.injectEnv"},
	} {
		add(RuleInvalidAnnotation, fmt.Sprintf("!variables.managed || %s.orValue('true') in ['true', 'false']", b.variable),
			celPerKind(func(k Kind) string {
				return msgInvalidBool(sentinelWorkload(k), b.key, sentinelValue)
			}, valueParts(b.variable+".value()")))
	}
	return out
}

// Sentinels: the message functions render them where a value of the request
// goes, and celMessage puts the CEL that computes the value in their place.
// The numbers are ones no other part of a message contains.
const (
	sentinelName      = "SENTINEL-NAME"
	sentinelValue     = "SENTINEL-VALUE"
	sentinelTypeValue = "SENTINEL-TYPE"
	sentinelType      = DeployType(sentinelTypeValue)
	sentinelReplicas  = 7770001
	sentinelExternal  = 88800002
)

func sentinelWorkload(k Kind) Workload { return Workload{Kind: k, Name: sentinelName} }

// sentinelTypeOf is the type sentinel, made to run as kind: msgKindMismatch
// reads only its name and its kind, which is kind's.
func sentinelTypeOf(kind Kind) DeployType {
	for _, t := range DeployTypes {
		if t.Kind() == kind {
			return t
		}
	}
	panic("no deploy type runs as " + string(kind))
}

// celPart is one value of a message: the text the sentinels render it as,
// and the CEL that computes it.
type celPart struct{ rendered, cel string }

// The parts every message can hold: the name and the deploy type. Names and
// label values are valid by the time a validating policy runs (the API
// server validates the object first), so %q of them is '"' + value + '"'.
var commonParts = []celPart{
	{fmt.Sprintf("%q", sentinelName), `'"' + object.metadata.name + '"'`},
	{fmt.Sprintf("%q", sentinelTypeValue), `'"' + variables.type + '"'`},
	{sentinelTypeValue, "variables.type"},
}

// labelledParts fill msgKindMismatch's type: sentinelTypeOf gives it a real
// type of the other kind, which the message names once, after "is labelled".
func labelledParts() []celPart {
	var parts []celPart
	for _, k := range []Kind{KindDeployment, KindStatefulSet} {
		parts = append(parts, celPart{" is labelled " + string(sentinelTypeOf(k)) + ",", "' is labelled ' + variables.type + ','"})
	}
	return parts
}

var replicasParts = []celPart{
	{fmt.Sprint(sentinelReplicas - 1), "string(variables.replicas - 1)"},
	{fmt.Sprint(sentinelReplicas + 1), "string(variables.replicas + 1)"},
	{fmt.Sprint(sentinelReplicas), "string(variables.replicas)"},
}

var votesParts = []celPart{
	{plural(sentinelReplicas, "replica"), "(variables.replicas == 1 ? '1 replica' : string(variables.replicas) + ' replicas')"},
	{plural(sentinelExternal, "external vote"), "(variables.external == 1 ? '1 external vote' : string(variables.external) + ' external votes')"},
	{fmt.Sprint(int64(sentinelReplicas) + sentinelExternal), "string(variables.votes)"},
	{fmt.Sprint(sentinelReplicas - 1), "string(variables.replicas - 1)"},
	{fmt.Sprint(sentinelReplicas + 1), "string(variables.replicas + 1)"},
}

// valueParts renders an annotation's value, any string: strings.quote
// escapes as %q does for every printable value.
func valueParts(value string) []celPart {
	return []celPart{{fmt.Sprintf("%q", sentinelValue), "strings.quote(" + value + ")"}}
}

// celPerKind is the CEL of a message that names the workload's kind: one
// rendering per kind, chosen by the request's.
func celPerKind(render func(Kind) string, parts []celPart) string {
	parts = slices.Concat(parts, commonParts)
	return fmt.Sprintf("(request.kind.kind == %s ? %s : %s)", celString(string(KindStatefulSet)),
		celMessage(render(KindStatefulSet), parts), celMessage(render(KindDeployment), parts))
}

// celMessage turns msg, rendered with sentinels, into a CEL string
// expression: the text between the sentinels as literals, each sentinel as
// the CEL of its part. A sentinel left over is a message function this file
// does not know how to fill, and a bug.
func celMessage(msg string, parts []celPart) string {
	var terms []string
	for msg != "" {
		at, which := len(msg), -1
		for i, p := range parts {
			if j := strings.Index(msg, p.rendered); j >= 0 && j < at {
				at, which = j, i
			}
		}
		if at > 0 {
			terms = append(terms, celString(msg[:at]))
		}
		if which < 0 {
			break
		}
		terms = append(terms, parts[which].cel)
		msg = msg[at+len(parts[which].rendered):]
	}
	out := "(" + strings.Join(terms, " + ") + ")"
	if strings.Contains(out, "SENTINEL") || strings.Contains(out, "777000") || strings.Contains(out, "888000") {
		panic("a sentinel is left in a CEL message: " + out)
	}
	return out
}

// celString is s as a CEL string literal.
func celString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// celIn is "x in ['a', 'b']".
func celIn(x string, quoted []string) string {
	return fmt.Sprintf("%s in [%s]", x, strings.Join(quoted, ", "))
}

func typeNames(types []DeployType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = celString(string(t))
	}
	return out
}
