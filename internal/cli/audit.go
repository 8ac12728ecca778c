package cli

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/review"
)

var auditHelp = commandHelp{
	usage: "audit [-n NAMESPACE] [-o table|json|junit] [--kubeconfig FILE] [flags]",
	description: `Audits what is stored in a live cluster by the rules admission applies to writes, as the
background audit of "statekeeper serve" does for its PolicyReports: every managed
Deployment and StatefulSet, every HorizontalPodAutoscaler of a managed workload and the
headless Service of every stateful StatefulSet. Read-only: it lists namespaces,
workloads, HPAs, claims and Services once and writes nothing.

Give it the same --default-mode and --excluded-namespaces (including statekeeper's own
namespace) as the server, so that both judge the same namespaces alike.

Output: a table of the findings (fail: a rule admission enforces; warn: a warning),
-o json (every audited object and finding by namespace) or -o junit (a test suite per
namespace, a test case per audited object, a failure per fail finding) for CI systems.

Exit status: 0 when nothing fails (warnings included), 1 when any finding fails, 2
when the cluster cannot be read or the flags are wrong.`,
}

// auditOptions are audit's own flags; the policy flags go to a config.Config.
type auditOptions struct {
	output, namespace, kubeconfig string
}

// auditFlags is audit's flag set, bound to cfg and o.
func auditFlags(cfg *config.Config, o *auditOptions) *pflag.FlagSet {
	fs := newFlagSet("audit")
	fs.StringVarP(&o.namespace, "namespace", "n", "", "audit this namespace only (default: all)")
	fs.StringVarP(&o.output, "output", "o", auditOutputTable, "table, json or junit")
	fs.StringVar(&o.kubeconfig, config.FlagKubeconfig, "", "kubeconfig file (empty: $KUBECONFIG, the in-cluster config, or ~/.kube/config)")
	cfg.BindPolicyFlags(fs)
	return fs
}

func runAudit(args []string, s streams) int {
	cfg := config.Default()
	var o auditOptions
	fs := auditFlags(&cfg, &o)
	if code, done := parseFlags(fs, args, auditHelp, s); done {
		return code
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("audit takes no arguments, got %q", fs.Args()))
	}
	switch o.output {
	case auditOutputTable, auditOutputJSON, auditOutputJUnit:
	default:
		problems = append(problems, fmt.Sprintf("--output: unknown format %q: must be table, json or junit", o.output))
	}
	if reportProblems(s, "audit", problems, cfg.Validate()) {
		return ExitUsage
	}

	audits, err := auditCluster(context.Background(), o.kubeconfig, o.namespace, review.SettingsFrom(cfg))
	if err != nil {
		fmt.Fprintf(s.stderr, "error: %v\n", err)
		return ExitUsage
	}
	if err := renderAudit(s.stdout, o.output, audits); err != nil {
		fmt.Fprintf(s.stderr, "error: %v\n", err)
		return ExitFailure
	}
	if auditFailed(audits) {
		return ExitFailure
	}
	return ExitOK
}

// auditCluster reads the cluster once and audits each namespace in it that
// has something to audit.
func auditCluster(ctx context.Context, kubeconfig, namespace string, settings review.Settings) ([]audit.NamespaceAudit, error) {
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	snap, err := audit.Read(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	engine := review.New(snap.Lookup(), settings)
	var out []audit.NamespaceAudit
	for _, ns := range snap.Namespaces() {
		a, err := audit.Namespace(ctx, engine, snap, ns)
		if err != nil {
			return nil, err
		}
		if len(a.Audited) > 0 {
			out = append(out, a)
		}
	}
	return out, nil
}
