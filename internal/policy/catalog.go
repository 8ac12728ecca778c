package policy

// RuleDoc documents one rule ID: how it speaks and what it judges, as the
// README's table of rules shows it.
type RuleDoc struct {
	Rule Rule
	// Denies and Warns say how the rule answers admission (some do both);
	// AuditOnly marks a rule only the background audit reports.
	Denies, Warns, AuditOnly bool
	// On names the requests it judges; What says what it refuses or warns of.
	On, What string
	// CEL says how much of the rule the API server decides in-process, in
	// the chart's ValidatingAdmissionPolicy (CELValidations).
	CEL CELCoverage
}

// CELCoverage is how much of a rule a CEL admission policy decides without
// the webhook: the rules that read only the object under review.
type CELCoverage string

const (
	// CELNone: the rule needs a lookup (or only warns), so only the webhook
	// decides it.
	CELNone CELCoverage = ""
	// CELFull: the policy decides every request the rule judges on a
	// workload CREATE or UPDATE, with the webhook's message.
	CELFull CELCoverage = "full"
	// CELPartial: the policy decides a lookup-free subset: whatever it
	// denies the webhook denies with the same message, but the webhook
	// denies more (the parts that need a lookup: an HPA, /scale).
	CELPartial CELCoverage = "partial"
)

// Rules is every rule ID statekeeper reports, in the order of docs/spec.md §4's
// table, then the rules it adds. It is the one list: the README's table is
// tested against it, and the integration and e2e suites fail when a rule is
// missing from their tests. A new rule is a constant in types.go and a row here.
var Rules = []RuleDoc{
	{Rule: RuleSingleInstance, Denies: true, Warns: true, CEL: CELPartial,
		On:   "CREATE, UPDATE, `/scale`, HPA",
		What: "replicas > 1 on a `*-single` workload; an HPA with `maxReplicas` > 1 on one, in either order of creation (an HPA whose target does not exist yet is warned of)"},
	{Rule: RuleKindMismatch, Denies: true, CEL: CELFull,
		On:   "CREATE, UPDATE",
		What: "`stateful-*` on a Deployment, `stateless-*` on a StatefulSet, an unknown deploy type"},
	{Rule: RuleKindSwitch, Denies: true, Warns: true,
		On:   "CREATE, labelled or not",
		What: "creating a workload of component C while the other kind's workload of C runs with persistent volumes (a warning once it is scaled to 0)"},
	{Rule: RuleTypeChange, Denies: true,
		On:   "UPDATE",
		What: "changing or removing `statekeeper.io/deploy-type` on a running workload with persistent volumes"},
	{Rule: RuleQuorum, Denies: true, CEL: CELPartial,
		On:   "CREATE, UPDATE, `/scale`",
		What: "an even number of votes on a `statekeeper.io/quorum: \"true\"` workload with replicas: its replicas plus the voters `statekeeper.io/quorum-external-votes` declares outside it (an arbiter)"},
	{Rule: RuleHeadlessConflict, Denies: true, Warns: true,
		On:   "CREATE; UPDATE that turns `inject-env` on",
		What: "a stateful StatefulSet whose Service exists, is not headless and is not statekeeper's: warned that its pods get no per-pod DNS names (statekeeper stamps none); denied with `statekeeper.io/inject-env: \"true\"`, whose FQDN and peer variables could never resolve"},
	{Rule: RuleSharedClaim, Warns: true,
		On:   "CREATE, UPDATE",
		What: "a claim volume that several instances would share or could not attach"},
	{Rule: RuleInvalidAnnotation, Denies: true, CEL: CELFull,
		On:   "CREATE, UPDATE",
		What: "a statekeeper annotation whose value cannot be used (storage size or class, a boolean, a vote count)"},
	{Rule: RuleInvalidMode, Warns: true,
		On:   "every reviewed request in the namespace",
		What: "a `statekeeper.io/mode` label statekeeper does not know; the namespace is enforced until it is fixed"},
	{Rule: RuleStorageResize, Denies: true, Warns: true,
		On:   "UPDATE of a StatefulSet; the audit of its claims",
		What: "a `statekeeper.io/storage-size` change, or a claim template's size changed in the manifest, that the claims cannot follow (a shrink, growth a class cannot expand, a template's size changed together with its other fields); warned of: a class that does not exist, a `storage-size` on templates statekeeper did not inject, a template resized in the manifest (it keeps its stored size; its claims grow). The audit: a claim whose expansion failed (fail) or has been under way for over an hour (warn)"},
	{Rule: RuleRecreateStrategy, Warns: true,
		On:   "CREATE, UPDATE of a Deployment",
		What: "a single-instance Deployment with a single-node claim that keeps the surging RollingUpdate its manifest sets"},
	{Rule: RuleDeletionProtection, Denies: true,
		On:   "DELETE",
		What: "deleting a protected workload that runs with persistent volumes"},
	{Rule: RuleUnknownKey, Warns: true,
		On:   "CREATE, UPDATE; CREATE of an unlabelled workload",
		What: "a key under `statekeeper.io/` on a workload or its pod template that statekeeper does not read there: an unknown key (with the nearest known one), or a known key in the wrong place (with where it belongs)"},
	{Rule: RuleEphemeralData, Warns: true,
		On:   "CREATE, UPDATE of a StatefulSet",
		What: "a `stateful-*` workload whose data mounts (all but configMap, secret, projected, downwardAPI and in-memory emptyDir volumes) are all emptyDir volumes, which die with the pod"},
	{Rule: RuleHeadlessMissing, AuditOnly: true,
		On:   "stored StatefulSets (the background audit)",
		What: "a stateful StatefulSet whose headless Service does not exist"},
}
