// Package chart tests the Helm chart in charts/statekeeper as Helm renders it:
// golden files for default and non-default values, the webhook contract of
// docs/architecture.md decoded into the API types, RBAC limits, schema
// rejections and `helm lint`.
//
// The helm binary is $HELM, or the one the Makefile builds into the tool cache.
// Regenerate the golden files with `go test ./test/chart/ -update`.
package chart

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current chart")

const (
	chartDir    = "../../charts/statekeeper"
	releaseName = "sk"
	releaseNS   = "statekeeper"
)

// helmBinary finds helm: $HELM, else the Makefile's tool cache. The tests skip
// only when neither is set up, and say how to get helm.
func helmBinary(t *testing.T) string {
	return toolBinary(t, "HELM", false, []string{"tools", "helm"},
		"build it with `make` or `GOBIN=DIR go install helm.sh/helm/v4/cmd/helm@v4.3.1`")
}

// toolBinary finds a tool: $env, the PATH's when onPath, else the Makefile's
// tool cache (cached, below ~/.cache/statekeeper or $XDG_CACHE_HOME's). The
// tests skip only when none is set up, saying how to get it.
func toolBinary(t *testing.T, env string, onPath bool, cached []string, howToGet string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if onPath {
		if p, err := exec.LookPath(strings.ToLower(env)); err == nil {
			return p
		}
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(append([]string{cache, "statekeeper"}, cached...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not found: %s is unset and %s is missing (%s)", strings.ToLower(env), env, p, howToGet)
	}
	return p
}

// runHelm runs helm with its config and cache in a temporary directory, so the
// tests neither read nor write the user's Helm settings.
func runHelm(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	helm := helmBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), &helmError{args: args, err: err, stderr: errOut.String()}
	}
	return out.String(), nil
}

// helmError is a failed helm run with what helm printed, so that tests can
// compare helm's whole message.
type helmError struct {
	args   []string
	err    error
	stderr string
}

func (e *helmError) Error() string {
	return fmt.Sprintf("helm %s: %v\n%s", strings.Join(e.args, " "), e.err, e.stderr)
}

func (e *helmError) Unwrap() error { return e.err }

// render runs `helm template` for release sk in namespace statekeeper.
func render(t *testing.T, values ...string) (string, error) {
	t.Helper()
	return renderRelease(t, releaseName, values...)
}

func renderRelease(t *testing.T, release string, values ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--namespace", releaseNS}, values...)
	return runHelm(t, args...)
}

func mustRender(t *testing.T, values ...string) string {
	t.Helper()
	out, err := render(t, values...)
	require.NoError(t, err)
	return out
}

// valueCase is one release rendered into a golden file: its name (sk when
// empty) and values.
type valueCase struct {
	name    string
	release string
	values  []string
	// apiVersions are what the API server serves beyond helm template's
	// own capabilities (--api-versions; helm lint takes none).
	apiVersions []string
}

func (c valueCase) render(t *testing.T) string {
	t.Helper()
	values := slices.Clone(c.values)
	for _, v := range c.apiVersions {
		values = append(values, "--api-versions", v)
	}
	out, err := renderRelease(t, cmp.Or(c.release, releaseName), values...)
	require.NoError(t, err)
	return out
}

// validatingAdmissionPolicy is how --api-versions names the kind the chart's
// admission policy needs served.
const validatingAdmissionPolicy = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"

// valueCases are the value sets rendered into golden files: the defaults and
// each non-default mode a user or a test layer installs with.
var valueCases = []valueCase{
	{name: "default"},
	{
		// Bring your own certificate.
		name: "secret-mode",
		values: []string{
			"--set", "tls.mode=secret",
			"--set", "tls.secretName=my-serving-cert",
			"--set", "webhook.caBundle=Zm9v",
		},
	},
	{
		// A local process: make run, envtest, the local e2e suite.
		name: "url-mode",
		values: []string{
			"--set", "webhook.url=https://127.0.0.1:9443",
			"--set", "webhook.caBundle=Zm9v",
		},
	},
	{
		name: "custom",
		values: []string{
			"--set", "webhook.excludedNamespaces={kube-system,tenant-infra}",
			"--set", "webhook.failurePolicy.workloads=Ignore",
			"--set", "webhook.failurePolicy.scaling=Ignore",
			"--set", "webhook.failurePolicy.pods=Fail",
			"--set", "webhook.timeoutSeconds=10",
			"--set", "config.defaultMode=warn",
			"--set", "config.defaultStorageSize=10Gi",
			"--set", "config.defaultStorageClass=fast-ssd",
			"--set", "config.clusterDomain=corp.example",
			"--set", "config.logFormat=console",
			"--set", "config.logLevel=debug",
			"--set", "replicaCount=3",
			"--set", "image.tag=v9.9.9",
			"--set", "metrics.serviceMonitor.enabled=true",
			"--set", "metrics.serviceMonitor.labels.release=prometheus",
			"--set", "podDisruptionBudget.minAvailable=2",
		},
	},
	{
		// The alerts and the dashboard (docs/monitoring.md), with a custom
		// timeout, renewal margin, failure policies and sidecar label.
		name: "monitoring",
		values: []string{
			"--set", "metrics.serviceMonitor.enabled=true",
			"--set", "monitoring.prometheusRule.enabled=true",
			"--set", "monitoring.prometheusRule.labels.release=prometheus",
			"--set", "monitoring.dashboard.enabled=true",
			"--set", "monitoring.dashboard.sidecarLabel=grafana.example/dashboard",
			"--set", "monitoring.dashboard.sidecarLabelValue=statekeeper",
			"--set", "webhook.timeoutSeconds=10",
			"--set", "tls.certManager.renewBefore=1h30m",
			"--set", "webhook.failurePolicy.workloads=Ignore",
			"--set", "webhook.failurePolicy.scaling=Ignore",
		},
	},
	{
		// 53 characters: every derived name must still fit in 63 and keep its suffix.
		name: "long-name",
		values: []string{
			"--set", "fullnameOverride=a-very-long-release-name-for-statekeeper-in-production",
			"--set", "replicaCount=1",
		},
	},
	{
		// A 53-character release name: a 63-character fullname, whose
		// "<fullname> CA" would exceed the 64 characters cert-manager allows
		// in a commonName.
		name:    "long-release-name",
		release: "payments-platform-admission-policies-eu-west-1-prod-a",
	},
	{
		// An API server that serves ValidatingAdmissionPolicy (1.30+; helm
		// template's own capabilities do not list it): the policy, its
		// bindings, and the workload entries' update condition.
		name:        "admission-policies",
		apiVersions: []string{validatingAdmissionPolicy},
	},
	{
		// Unlabelled namespaces are audited: a binding of theirs audits.
		name:        "admission-policies-audit",
		values:      []string{"--set", "config.defaultMode=audit"},
		apiVersions: []string{validatingAdmissionPolicy},
	},
	{
		// An API server that serves MutatingAdmissionPolicy too (1.36): the
		// mutating policy, its default class rendered in, and a binding that
		// leaves unlabelled namespaces out when their mode is off.
		name: "mutating-admission-policy",
		values: []string{"--set", "config.defaultStorageClass=fast", "--set", "config.defaultStorageSize=5Gi",
			"--set", "config.defaultMode=off"},
		apiVersions: []string{validatingAdmissionPolicy, mutatingAdmissionPolicy},
	},
}

// mutatingAdmissionPolicy is how --api-versions names the kind the chart's
// mutating admission policy needs served.
const mutatingAdmissionPolicy = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"

func TestGolden(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.render(t)
			golden := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run `go test ./test/chart/ -update` to create the golden file")
			assert.Equal(t, string(want), got, "rendered chart differs from %s; if the change is intended, run with -update", golden)
		})
	}
}

// object is one rendered document: its kind and its raw YAML.
type object struct {
	kind, name string
	raw        []byte
}

func splitDocuments(t *testing.T, manifest string) []object {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objects []object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		require.NoError(t, err)
		var meta struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &meta))
		if meta.Kind == "" {
			continue // a document holding only comments
		}
		objects = append(objects, object{kind: meta.Kind, name: meta.Name, raw: doc})
	}
}

// typedKinds are the kinds whose Go types the tests decode into; cert-manager
// and prometheus-operator objects are covered by the golden files only.
func newTyped(kind string) any {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}
	case "Service":
		return &corev1.Service{}
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "Role":
		return &rbacv1.Role{}
	case "RoleBinding":
		return &rbacv1.RoleBinding{}
	case "MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	case "ValidatingWebhookConfiguration":
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}
	}
	return nil
}

// TestRenderedObjectsAreWellFormed decodes every rendered object strictly into
// its API type (a misspelt or misplaced field fails) and checks the name limits.
func TestRenderedObjectsAreWellFormed(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, obj := range splitDocuments(t, tc.render(t)) {
				assert.LessOrEqual(t, len(obj.name), 63, "%s %q: name longer than 63 characters", obj.kind, obj.name)
				if obj.kind == "Certificate" {
					assertCertManagerAccepts(t, obj)
				}
				typed := newTyped(obj.kind)
				if typed == nil {
					continue
				}
				assert.NoError(t, yaml.UnmarshalStrict(obj.raw, typed), "%s %q", obj.kind, obj.name)
			}
		})
	}
}

func decodeOne[T any](t *testing.T, manifest, kind string) *T {
	t.Helper()
	var found *T
	for _, obj := range splitDocuments(t, manifest) {
		if obj.kind != kind {
			continue
		}
		require.Nil(t, found, "more than one %s rendered", kind)
		found = new(T)
		require.NoError(t, yaml.UnmarshalStrict(obj.raw, found))
	}
	require.NotNil(t, found, "no %s rendered", kind)
	return found
}

// The webhook contract of docs/architecture.md, compared whole: names, paths,
// rules, selectors and policies are what the server and every test layer rely on.
func TestWebhookContract(t *testing.T) {
	manifest := mustRender(t, "--set", "webhook.url=https://127.0.0.1:9443/", "--set", "webhook.caBundle=Zm9v")

	clientConfig := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{
			URL:      ptr.To("https://127.0.0.1:9443" + path),
			CABundle: []byte("foo"),
		}
	}
	namespaceSelector := func(mode metav1.LabelSelectorRequirement) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "kube-public", "kube-node-lease", releaseNS}},
			mode,
		}}
	}
	enforced := namespaceSelector(metav1.LabelSelectorRequirement{Key: "statekeeper.io/mode", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"off", "warn", "audit"}})
	warned := namespaceSelector(metav1.LabelSelectorRequirement{Key: "statekeeper.io/mode", Operator: metav1.LabelSelectorOpIn, Values: []string{"warn", "audit"}})
	notOff := namespaceSelector(metav1.LabelSelectorRequirement{Key: "statekeeper.io/mode", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"off"}})
	// The warn-default entries exist in every mode and match no namespace
	// unless the default mode is a warn mode (see statekeeper.modeGroups).
	noNamespace := namespaceSelector(metav1.LabelSelectorRequirement{Key: "statekeeper.io/mode", Operator: metav1.LabelSelectorOpDoesNotExist})
	noNamespace.MatchExpressions = append(noNamespace.MatchExpressions, metav1.LabelSelectorRequirement{Key: "statekeeper.io/mode", Operator: metav1.LabelSelectorOpExists})
	// The workload entries route by match conditions alone (no objectSelector,
	// which never sees the pod template): managed on CREATE and UPDATE (new
	// or old object), exactly the others on the unlabelled entry's CREATE.
	managed := []admissionregistrationv1.MatchCondition{{
		Name: "managed-workload", Expression: managedWorkload("object") + " || " + managedWorkload("oldObject"),
	}}
	deletedManaged := admissionregistrationv1.MatchCondition{Name: "managed-workload", Expression: managedWorkload("oldObject")}
	rule := func(group, version string, resources []string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources,
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}
	}
	const create, update = admissionregistrationv1.Create, admissionregistrationv1.Update
	workloads := []string{"deployments", "statefulsets"}
	none := ptr.To(admissionregistrationv1.SideEffectClassNone)
	equivalent := ptr.To(admissionregistrationv1.Equivalent)
	fail, ignore := ptr.To(admissionregistrationv1.Fail), ptr.To(admissionregistrationv1.Ignore)
	never := ptr.To(admissionregistrationv1.NeverReinvocationPolicy)
	timeout := ptr.To[int32](5)
	v1 := []string{"v1"}

	scaleRules := []admissionregistrationv1.RuleWithOperations{
		rule("apps", "v1", []string{"deployments/scale", "statefulsets/scale"}, update),
		rule("autoscaling", "v2", []string{"horizontalpodautoscalers"}, create, update),
	}
	beyondOne := []admissionregistrationv1.MatchCondition{{
		Name: "may-exceed-one-replica",
		Expression: "request.resource.resource == 'horizontalpodautoscalers' ? object.spec.maxReplicas > 1 : " +
			"has(object.spec) && has(object.spec.replicas) && object.spec.replicas > 1",
	}}

	mutating := decodeOne[admissionregistrationv1.MutatingWebhookConfiguration](t, manifest, "MutatingWebhookConfiguration")
	mutateWorkloads := func(name string, policy *admissionregistrationv1.FailurePolicyType, namespaces *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            clientConfig("/mutate"),
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("apps", "v1", workloads, create, update)},
			FailurePolicy:           policy,
			ReinvocationPolicy:      never,
			MatchConditions:         managed,
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: namespaces,
		}
	}
	assert.Equal(t, []admissionregistrationv1.MutatingWebhook{
		mutateWorkloads("workloads.mutate.statekeeper.io", fail, enforced),
		mutateWorkloads("workloads-warn.mutate.statekeeper.io", ignore, warned),
		mutateWorkloads("workloads-warn-default.mutate.statekeeper.io", ignore, noNamespace),
		{
			Name:               "pods.mutate.statekeeper.io",
			ClientConfig:       clientConfig("/mutate-pods"),
			Rules:              []admissionregistrationv1.RuleWithOperations{rule("", "v1", []string{"pods"}, create)},
			FailurePolicy:      ignore,
			ReinvocationPolicy: never,
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name: "owned-by-statefulset",
				Expression: "has(object.metadata.ownerReferences) && " +
					"object.metadata.ownerReferences.exists(r, r.kind == 'StatefulSet' && r.apiVersion.startsWith('apps/'))",
			}},
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: notOff,
		},
		{
			Name:               "claims.mutate.statekeeper.io",
			ClientConfig:       clientConfig("/mutate-claims"),
			Rules:              []admissionregistrationv1.RuleWithOperations{rule("", "v1", []string{"persistentvolumeclaims"}, create)},
			FailurePolicy:      ignore,
			ReinvocationPolicy: never,
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "statefulset-claim",
				Expression: "has(object.metadata.name) && has(object.metadata.labels) && object.metadata.name.matches('^.+-.+-[0-9]+$')",
			}},
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: notOff,
		},
	}, mutating.Webhooks)
	assert.Empty(t, mutating.Annotations, "an explicit caBundle must not be overwritten by cert-manager's injector")

	validating := decodeOne[admissionregistrationv1.ValidatingWebhookConfiguration](t, manifest, "ValidatingWebhookConfiguration")
	validateWorkloads := func(name string, policy *admissionregistrationv1.FailurePolicyType, namespaces *metav1.LabelSelector) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            clientConfig("/validate"),
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("apps", "v1", workloads, create, update)},
			FailurePolicy:           policy,
			MatchConditions:         managed,
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: namespaces,
		}
	}
	validateScaling := func(name string, policy *admissionregistrationv1.FailurePolicyType, namespaces *metav1.LabelSelector) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            clientConfig("/validate"),
			Rules:                   scaleRules,
			FailurePolicy:           policy,
			MatchConditions:         beyondOne,
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: namespaces,
		}
	}
	assert.Equal(t, []admissionregistrationv1.ValidatingWebhook{
		validateWorkloads("workloads.validate.statekeeper.io", fail, enforced),
		validateWorkloads("workloads-warn.validate.statekeeper.io", ignore, warned),
		validateWorkloads("workloads-warn-default.validate.statekeeper.io", ignore, noNamespace),
		{
			Name:          "unlabelled-workloads.validate.statekeeper.io",
			ClientConfig:  clientConfig("/validate-unlabelled"),
			Rules:         []admissionregistrationv1.RuleWithOperations{rule("apps", "v1", workloads, create)},
			FailurePolicy: ignore,
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "unmanaged-workload", Expression: "! " + managedWorkload("object")},
			},
			// Its own, shorter timeout (webhook.unlabelledTimeoutSeconds): it fails open.
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: ptr.To[int32](2),
			NamespaceSelector: notOff,
		},
		validateScaling("scaling.validate.statekeeper.io", fail, enforced),
		validateScaling("scaling-warn.validate.statekeeper.io", ignore, warned),
		validateScaling("scaling-warn-default.validate.statekeeper.io", ignore, noNamespace),
		{
			Name:          "deletions.validate.statekeeper.io",
			ClientConfig:  clientConfig("/validate"),
			Rules:         []admissionregistrationv1.RuleWithOperations{rule("apps", "v1", workloads, admissionregistrationv1.Delete)},
			FailurePolicy: fail,
			MatchConditions: []admissionregistrationv1.MatchCondition{
				deletedManaged,
				{Name: "workload-protected", Expression: protectedWorkload},
			},
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: notOff,
		},
		{
			Name:          "namespace-deletions.validate.statekeeper.io",
			ClientConfig:  clientConfig("/validate"),
			Rules:         []admissionregistrationv1.RuleWithOperations{rule("apps", "v1", workloads, admissionregistrationv1.Delete)},
			FailurePolicy: fail,
			MatchConditions: []admissionregistrationv1.MatchCondition{
				deletedManaged,
				{Name: "workload-not-protected-itself", Expression: "! " + protectedWorkload},
			},
			AdmissionReviewVersions: v1, SideEffects: none, MatchPolicy: equivalent, TimeoutSeconds: timeout,
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: append(slices.Clone(notOff.MatchExpressions),
				metav1.LabelSelectorRequirement{Key: "statekeeper.io/protect", Operator: metav1.LabelSelectorOpIn, Values: []string{"true"}})},
		},
	}, validating.Webhooks)
}

// managedWorkload is the CEL condition that a workload, the variable v
// (object or oldObject), is managed: it carries statekeeper.io/deploy-type on
// itself or on its pod template (policy.EffectiveKeys). Null (object on
// DELETE, oldObject on CREATE) is not managed, and every field is tested with
// has() before it is read: an evaluation error in an entry that fails closed
// refuses the write.
func managedWorkload(v string) string {
	return strings.ReplaceAll("(V != null && ( "+
		"(has(V.metadata) && has(V.metadata.labels) && 'statekeeper.io/deploy-type' in V.metadata.labels) || "+
		"(has(V.spec) && has(V.spec.template) && has(V.spec.template.metadata) && "+
		"has(V.spec.template.metadata.labels) && 'statekeeper.io/deploy-type' in V.spec.template.metadata.labels)))", "V", v)
}

// protectedWorkload is the CEL condition that sends a workload's deletion to
// statekeeper: its statekeeper.io/protect annotation is "true", or it has
// none and its pod template's is (the workload's own annotation wins).
const protectedWorkload = "(oldObject != null && ( " +
	"has(oldObject.metadata) && has(oldObject.metadata.annotations) && 'statekeeper.io/protect' in oldObject.metadata.annotations " +
	"? oldObject.metadata.annotations['statekeeper.io/protect'] == 'true' " +
	": has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) && " +
	"has(oldObject.spec.template.metadata.annotations) && 'statekeeper.io/protect' in oldObject.spec.template.metadata.annotations && " +
	"oldObject.spec.template.metadata.annotations['statekeeper.io/protect'] == 'true'))"

// TestWebhooksPerNamespaceMode evaluates every webhook's namespaceSelector
// against namespaces of every mode, for every default mode: a namespace in
// scope matches exactly one entry of each webhook, whose failure policy is the
// configured one where statekeeper enforces and Ignore where it never denies
// (warn and audit: an outage must never block them); an off namespace matches
// none.
func TestWebhooksPerNamespaceMode(t *testing.T) {
	namespaces := map[string]map[string]string{
		"unlabelled": {},
		"enforce":    {"statekeeper.io/mode": "enforce"},
		"warn":       {"statekeeper.io/mode": "warn"},
		"audit":      {"statekeeper.io/mode": "audit"},
		"off":        {"statekeeper.io/mode": "off"},
		// An unknown value is enforced (docs/spec.md §6), whatever the default.
		"unknown": {"statekeeper.io/mode": "bogus"},
	}
	for _, defaultMode := range []string{"enforce", "warn", "audit", "off"} {
		t.Run("default "+defaultMode, func(t *testing.T) {
			manifest := mustRender(t, "--set", "config.defaultMode="+defaultMode,
				"--set", "webhook.failurePolicy.workloads=Fail", "--set", "webhook.failurePolicy.scaling=Fail")
			type entry struct {
				name     string
				policy   admissionregistrationv1.FailurePolicyType
				selector *metav1.LabelSelector
			}
			var entries []entry
			for _, w := range decodeOne[admissionregistrationv1.MutatingWebhookConfiguration](t, manifest, "MutatingWebhookConfiguration").Webhooks {
				entries = append(entries, entry{w.Name, *w.FailurePolicy, w.NamespaceSelector})
			}
			for _, w := range decodeOne[admissionregistrationv1.ValidatingWebhookConfiguration](t, manifest, "ValidatingWebhookConfiguration").Webhooks {
				entries = append(entries, entry{w.Name, *w.FailurePolicy, w.NamespaceSelector})
			}
			for nsName, nsLabels := range namespaces {
				effective := defaultMode
				if v, ok := nsLabels["statekeeper.io/mode"]; ok {
					effective = v
					if !slices.Contains([]string{"enforce", "warn", "audit", "off"}, v) {
						effective = "enforce"
					}
				}
				if effective == "audit" {
					effective = "warn" // the same entries: statekeeper never denies there
				}
				nsLabels := labels.Set(maps.Clone(nsLabels))
				nsLabels["kubernetes.io/metadata.name"] = "team-a"
				// The webhook each entry belongs to (its name without the
				// mode group) → the failure policies of the entries that match.
				got := map[string][]admissionregistrationv1.FailurePolicyType{}
				for _, e := range entries {
					selector, err := metav1.LabelSelectorAsSelector(e.selector)
					require.NoError(t, err, e.name)
					if selector.Matches(nsLabels) {
						webhook := strings.Replace(strings.Replace(e.name, "-warn-default.", ".", 1), "-warn.", ".", 1)
						got[webhook] = append(got[webhook], e.policy)
					}
				}
				want := map[string][]admissionregistrationv1.FailurePolicyType{}
				switch effective {
				case "enforce":
					for _, w := range []string{"workloads.mutate", "workloads.validate", "scaling.validate"} {
						want[w+".statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail}
					}
				case "warn":
					for _, w := range []string{"workloads.mutate", "workloads.validate", "scaling.validate"} {
						want[w+".statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Ignore}
					}
				}
				if effective != "off" {
					want["pods.mutate.statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Ignore}
					want["claims.mutate.statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Ignore}
					// The kind-switch guard of unlabelled workloads fails open everywhere.
					want["unlabelled-workloads.validate.statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Ignore}
					// Deletion protection: only protected workloads are ever sent.
					want["deletions.validate.statekeeper.io"] = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail}
				}
				assert.Equal(t, want, got, "namespace %s (mode %s)", nsName, effective)
			}
		})
	}
}

// In the default cert-manager mode the webhooks call the chart's Service and
// cert-manager injects the CA of the serving Certificate.
func TestWebhookServiceModeWithCertManager(t *testing.T) {
	manifest := mustRender(t)
	serviceConfig := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: releaseNS, Name: "sk-statekeeper-webhook", Path: ptr.To(path), Port: ptr.To[int32](443),
		}}
	}
	paths := map[string]string{"unlabelled-workloads.validate.statekeeper.io": "/validate-unlabelled"}
	wantAnnotations := map[string]string{"cert-manager.io/inject-ca-from": "statekeeper/sk-statekeeper-serving-cert"}

	validating := decodeOne[admissionregistrationv1.ValidatingWebhookConfiguration](t, manifest, "ValidatingWebhookConfiguration")
	assert.Equal(t, wantAnnotations, validating.Annotations)
	for _, w := range validating.Webhooks {
		path := paths[w.Name]
		if path == "" {
			path = "/validate"
		}
		assert.Equal(t, serviceConfig(path), w.ClientConfig, w.Name)
	}
	mutating := decodeOne[admissionregistrationv1.MutatingWebhookConfiguration](t, manifest, "MutatingWebhookConfiguration")
	assert.Equal(t, wantAnnotations, mutating.Annotations)

	service := decodeOne[corev1.Service](t, renderOnly(t, "templates/service.yaml"), "Service")
	assert.Equal(t, "sk-statekeeper-webhook", service.Name)
	assert.Equal(t, []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intOrName("webhook"), Protocol: corev1.ProtocolTCP}}, service.Spec.Ports)
}

func renderOnly(t *testing.T, template string, values ...string) string {
	t.Helper()
	return mustRender(t, append([]string{"--show-only", template}, values...)...)
}

// The server's flags and hardening as docs/spec.md §7 and §8 name them.
func TestDeployment(t *testing.T) {
	deployment := decodeOne[appsv1.Deployment](t, renderOnly(t, "templates/deployment.yaml",
		"--set", "config.defaultStorageClass=fast", "--set", "webhook.excludedNamespaces={kube-system,statekeeper}"), "Deployment")

	assert.Equal(t, ptr.To[int32](2), deployment.Spec.Replicas)
	pod := deployment.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	container := pod.Containers[0]
	assert.Equal(t, []string{
		"serve",
		"--webhook-port=9443",
		"--cert-dir=/tmp/k8s-webhook-server/serving-certs",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--shutdown-drain=5s",
		"--leader-elect=true",
		"--default-mode=enforce",
		"--excluded-namespaces=kube-system,statekeeper", // the release namespace only once
		"--default-storage-size=1Gi",
		"--default-storage-class=fast",
		"--cluster-domain=cluster.local",
		"--audit=true",
		"--audit-reports=true",
		"--audit-interval=1h",
		// helm template's capabilities list no ValidatingAdmissionPolicy: no policy to verify.
		"--verify-admission-policies=false",
		"--log-format=json",
		"--log-level=info",
	}, container.Args)
	assert.Equal(t, []corev1.EnvVar{{
		Name:      "POD_NAMESPACE",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
	}, {
		Name: "GOMEMLIMIT", Value: "483183820", // 90 % of the default limit, 512Mi
	}}, container.Env)
	assert.Equal(t, "ghcr.io/statekeeper/statekeeper:0.1.0", container.Image)

	assert.Equal(t, &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}, container.SecurityContext)
	assert.Equal(t, &corev1.HTTPGetAction{Path: "/healthz", Port: intOrName("health")}, container.LivenessProbe.HTTPGet)
	assert.Equal(t, &corev1.HTTPGetAction{Path: "/readyz", Port: intOrName("health")}, container.ReadinessProbe.HTTPGet)
	assert.Equal(t, []corev1.VolumeMount{
		{Name: "serving-certs", MountPath: "/tmp/k8s-webhook-server/serving-certs", ReadOnly: true},
		{Name: "tmp", MountPath: "/tmp"},
	}, container.VolumeMounts)
	require.NotEmpty(t, pod.Volumes)
	assert.Equal(t, "sk-statekeeper-tls", pod.Volumes[0].Secret.SecretName)
	assert.Equal(t, "sk-statekeeper", pod.ServiceAccountName)
	require.NotNil(t, pod.Affinity)
	assert.NotNil(t, pod.Affinity.PodAntiAffinity)
	assert.Len(t, pod.TopologySpreadConstraints, 2)
}

// GOMEMLIMIT follows the container's memory limit, in every unit a limit
// is commonly written in, and is left out without a limit.
func TestGoMemLimit(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   []string // the GOMEMLIMIT values set; none without a limit
	}{
		{name: "binary suffix", values: []string{"--set", "resources.limits.memory=1Gi"}, want: []string{"966367641"}},
		{name: "fractional", values: []string{"--set", "resources.limits.memory=1.5Gi"}, want: []string{"1449551462"}},
		{name: "decimal suffix", values: []string{"--set", "resources.limits.memory=2G"}, want: []string{"1800000000"}},
		{name: "bytes as a number", values: []string{"--set", "resources.limits.memory=536870912"}, want: []string{"483183820"}},
		{name: "bytes as a string", values: []string{"--set-string", "resources.limits.memory=536870912"}, want: []string{"483183820"}},
		{name: "no limit", values: []string{"--set", "resources.limits=null"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			deployment := decodeOne[appsv1.Deployment](t, renderOnly(t, "templates/deployment.yaml", tc.values...), "Deployment")
			var got []string
			for _, env := range deployment.Spec.Template.Spec.Containers[0].Env {
				if env.Name == "GOMEMLIMIT" {
					got = append(got, env.Value)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// Least privilege: nothing on Secrets, no wildcards anywhere, and the exact
// rules the server's caches and reconciler need.
func TestRBAC(t *testing.T) {
	manifest := mustRender(t)
	clusterRole := decodeOne[rbacv1.ClusterRole](t, manifest, "ClusterRole")
	role := decodeOne[rbacv1.Role](t, manifest, "Role")

	cached := []string{"list", "watch"}
	read := []string{"get", "list", "watch"}
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: cached},
		{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims"}, Verbs: cached},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: read},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch", "create", "patch", "delete"}},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims"}, Verbs: []string{"patch"}},
		{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: read},
		{APIGroups: []string{"wgpolicyk8s.io"}, Resources: []string{"policyreports"}, Verbs: []string{"list", "create", "update", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}, clusterRole.Rules)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		// The probe of --claim-template-resize auto (internal/review.ClaimTemplateProbeName).
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: []string{"create"}},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, ResourceNames: []string{"statekeeper-claim-template-probe"}, Verbs: []string{"get", "update", "delete"}},
	}, role.Rules)
	assert.Equal(t, releaseNS, role.Namespace)

	for _, rule := range append(clusterRole.Rules, role.Rules...) {
		for _, field := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
			assert.NotContains(t, field, "*", "wildcard in %+v", rule)
			assert.NotContains(t, field, "secrets", "access to Secrets in %+v", rule)
		}
	}
}

// Values that would install a broken or unsafe webhook are refused before
// anything reaches the cluster, with a message naming the value.
func TestInvalidValuesAreRejected(t *testing.T) {
	cases := []struct {
		name    string
		values  []string
		wantErr string
	}{
		{
			name:    "unknown default mode",
			values:  []string{"--set", "config.defaultMode=bogus"},
			wantErr: schemaError("at '/config/defaultMode': value must be one of 'enforce', 'warn', 'audit', 'off'"),
		},
		{
			name:    "no replicas",
			values:  []string{"--set", "replicaCount=0"},
			wantErr: schemaError("at '/replicaCount': minimum: got 0, want 1"),
		},
		{
			name:    "timeout above the API server's limit",
			values:  []string{"--set", "webhook.timeoutSeconds=31"},
			wantErr: schemaError("at '/webhook/timeoutSeconds': maximum: got 31, want 30"),
		},
		{
			name:    "unlabelled timeout below the API server's limit",
			values:  []string{"--set", "webhook.unlabelledTimeoutSeconds=0"},
			wantErr: schemaError("at '/webhook/unlabelledTimeoutSeconds': minimum: got 0, want 1"),
		},
		{
			name:    "probe field the chart does not pass",
			values:  []string{"--set", "probes.liveness.successThreshold=2"},
			wantErr: schemaError("at '/probes/liveness': additional properties 'successThreshold' not allowed"),
		},
		{
			name:    "probe that never runs",
			values:  []string{"--set", "probes.readiness.periodSeconds=0"},
			wantErr: schemaError("at '/probes/readiness/periodSeconds': minimum: got 0, want 1"),
		},
		{
			name:    "unknown failure policy",
			values:  []string{"--set", "webhook.failurePolicy.pods=Sometimes"},
			wantErr: schemaError("at '/webhook/failurePolicy/pods': value must be one of 'Fail', 'Ignore'"),
		},
		{
			name:    "unknown tls mode",
			values:  []string{"--set", "tls.mode=vault"},
			wantErr: schemaError("at '/tls/mode': value must be one of 'cert-manager', 'secret'"),
		},
		{
			name:    "plain http webhook url",
			values:  []string{"--set", "webhook.url=http://127.0.0.1:9443"},
			wantErr: schemaError(`at '/webhook/url': 'http://127.0.0.1:9443' does not match pattern '^(https://.+)?$'`),
		},
		{
			name:    "storage class that is no object name",
			values:  []string{"--set", "config.defaultStorageClass=Fast_SSD"},
			wantErr: schemaError(`at '/config/defaultStorageClass': 'Fast_SSD' does not match pattern '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$'`),
		},
		{
			name:    "misspelt key",
			values:  []string{"--set", "webhook.timeoutSecond=3"},
			wantErr: schemaError("at '/webhook': additional properties 'timeoutSecond' not allowed"),
		},
		{
			name:    "memory limit that is no quantity",
			values:  []string{"--set", "resources.limits.memory=lots"},
			wantErr: schemaError(`at '/resources/limits/memory': 'lots' does not match pattern '^[0-9]+(\\.[0-9]+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$'`),
		},
		{
			name:   "secret mode without a CA bundle",
			values: []string{"--set", "tls.mode=secret"},
			wantErr: "Error: execution error at (statekeeper/templates/validatingwebhookconfiguration.yaml:1:4): " +
				"tls.mode=secret needs webhook.caBundle: the base64-encoded PEM CA that signed the certificate in the Secret tls.secretName\n\n" +
				"Use --debug flag to render out invalid YAML\n",
		},
		{
			name:   "a PodDisruptionBudget that never allows an eviction",
			values: []string{"--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=2"},
			wantErr: "Error: execution error at (statekeeper/templates/poddisruptionbudget.yaml:4:4): " +
				"podDisruptionBudget.minAvailable (2) must be less than replicaCount (2): otherwise no replica may ever be evicted and `kubectl drain` blocks forever\n\n" +
				"Use --debug flag to render out invalid YAML\n",
		},
		{
			name:    "a PodDisruptionBudget of 100%",
			values:  []string{"--set", "podDisruptionBudget.minAvailable=100%"},
			wantErr: schemaError("at '/podDisruptionBudget/minAvailable': '100%' does not match pattern '^[1-9]?[0-9]%$'"),
		},
		{
			name:   "excluded namespaces set to null",
			values: []string{"--set", "webhook.excludedNamespaces=null"},
			wantErr: "Error: execution error at (statekeeper/templates/validatingwebhookconfiguration.yaml:1:4): " +
				"webhook.excludedNamespaces must be a list of namespace names (use [] for none besides the release namespace, which is always excluded); null removes the chart's default list\n\n" +
				"Use --debug flag to render out invalid YAML\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values...)
			var failed *helmError
			require.ErrorAs(t, err, &failed)
			assert.Equal(t, tc.wantErr, failed.stderr)
		})
	}
}

func TestLint(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", chartDir, "--strict", "--namespace", releaseNS}, tc.values...)
			if tc.release != "" {
				args = append(args, "--set", "fullnameOverride="+tc.release+"-statekeeper")
			}
			out, err := runHelm(t, args...)
			require.NoError(t, err, out)
		})
	}
}

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }

// schemaError is what helm prints when values.schema.json rejects one value.
func schemaError(violation string) string {
	return "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n" +
		"statekeeper:\n- " + violation + "\n\n"
}

// A PodDisruptionBudget never holds a drain hostage to replicas that are not
// ready, and leaves room for one eviction.
func TestPodDisruptionBudget(t *testing.T) {
	pdb := decodeOne[policyv1.PodDisruptionBudget](t, renderOnly(t, "templates/poddisruptionbudget.yaml"), "PodDisruptionBudget")
	assert.Equal(t, policyv1.PodDisruptionBudgetSpec{
		MinAvailable:               ptr.To(intstr.FromInt32(1)),
		Selector:                   &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "statekeeper", "app.kubernetes.io/instance": releaseName}},
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}, pdb.Spec)
}

// With webhook.url and cert-manager TLS the serving certificate also names
// the URL's host, which the API server verifies it against.
func TestServingCertificateNamesTheWebhookURLHost(t *testing.T) {
	service := []string{"sk-statekeeper-webhook.statekeeper.svc", "sk-statekeeper-webhook.statekeeper.svc.cluster.local"}
	cases := []struct {
		url     string
		wantDNS []string
		wantIPs []string
	}{
		{url: "", wantDNS: service},
		{url: "https://127.0.0.1:9443", wantDNS: service, wantIPs: []string{"127.0.0.1"}},
		{url: "https://[::1]:9443/", wantDNS: service, wantIPs: []string{"::1"}},
		{url: "https://webhooks.example.com", wantDNS: append(slices.Clone(service), "webhooks.example.com")},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			manifest := renderOnly(t, "templates/certificates.yaml", "--set", "webhook.url="+tc.url)
			var found []certificateNames
			for _, obj := range splitDocuments(t, manifest) {
				if obj.name == "sk-statekeeper-serving-cert" {
					var cert struct {
						Spec certificateNames `json:"spec"`
					}
					require.NoError(t, yaml.Unmarshal(obj.raw, &cert))
					found = append(found, cert.Spec)
				}
			}
			assert.Equal(t, []certificateNames{{DNSNames: tc.wantDNS, IPAddresses: tc.wantIPs}}, found)
		})
	}
}

// certificateNames are the names a cert-manager Certificate issues for.
type certificateNames struct {
	DNSNames    []string `json:"dnsNames"`
	IPAddresses []string `json:"ipAddresses"`
}

// The demo in NOTES.txt runs its dry run in a namespace of its own, one
// statekeeper reviews: the user's current namespace may be an excluded one.
func TestNotesDemoRunsInAReviewedNamespace(t *testing.T) {
	out, err := runHelm(t, "install", releaseName, chartDir, "--namespace", releaseNS, "--dry-run=client")
	require.NoError(t, err)
	_, notes, found := strings.Cut(out, "NOTES:\n")
	require.True(t, found, "helm printed no NOTES")
	demo := regexp.MustCompile(`kubectl apply --namespace (\S+) --dry-run=server -f -`).FindStringSubmatch(notes)
	require.NotNil(t, demo, "the demo's dry run names no namespace:\n%s", notes)
	excluded := regexp.MustCompile(`namespaces except: (\S+)\.`).FindStringSubmatch(notes)
	require.NotNil(t, excluded, notes)
	assert.NotContains(t, strings.Split(excluded[1], ","), demo[1])
	assert.Contains(t, notes, "kubectl create namespace "+demo[1]+"\n")
}

// The audit's CRD, its RBAC and its flags follow the values: a cluster that
// already has the PolicyReport CRD (installCRD=false) gets none, and a
// disabled audit asks for neither HPAs nor reports.
func TestAuditValues(t *testing.T) {
	crd := func(values ...string) []string {
		var kinds []string
		for _, doc := range strings.Split(mustRender(t, values...), "\n---") {
			if strings.Contains(doc, "kind: CustomResourceDefinition") {
				kinds = append(kinds, doc[strings.Index(doc, "name: "):][:len("name: policyreports.wgpolicyk8s.io")])
			}
		}
		return kinds
	}
	assert.Equal(t, []string{"name: policyreports.wgpolicyk8s.io"}, crd())
	assert.Empty(t, crd("--set", "audit.reports.installCRD=false"))
	assert.Empty(t, crd("--set", "audit.reports.enabled=false"))
	assert.Empty(t, crd("--set", "audit.enabled=false"))

	rulesOf := func(values ...string) []string {
		role := decodeOne[rbacv1.ClusterRole](t, mustRender(t, values...), "ClusterRole")
		var groups []string
		for _, r := range role.Rules {
			groups = append(groups, strings.Join(r.APIGroups, ",")+"/"+strings.Join(r.Resources, ","))
		}
		return groups
	}
	core := []string{"apps/deployments", "/pods,persistentvolumeclaims", "apps/statefulsets", "/namespaces", "autoscaling/horizontalpodautoscalers",
		"/services", "policy/poddisruptionbudgets", "/pods,persistentvolumeclaims", "storage.k8s.io/storageclasses"}
	events := []string{"/events", "events.k8s.io/events"}
	assert.Equal(t, slices.Concat(core, events), rulesOf("--set", "audit.reports.enabled=false"))
	assert.Equal(t, slices.Concat(core, events), rulesOf("--set", "audit.enabled=false"))

	deployment := decodeOne[appsv1.Deployment](t, renderOnly(t, "templates/deployment.yaml",
		"--set", "audit.enabled=false", "--set", "audit.interval=10m"), "Deployment")
	assert.Subset(t, deployment.Spec.Template.Spec.Containers[0].Args, []string{"--audit=false", "--audit-interval=10m"})
}
