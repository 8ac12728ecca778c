package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Flag names (docs/spec.md §7). Each has the environment twin EnvName(flag).
const (
	FlagWebhookHost             = "webhook-host"
	FlagWebhookPort             = "webhook-port"
	FlagCertDir                 = "cert-dir"
	FlagMetricsBindAddress      = "metrics-bind-address"
	FlagHealthProbeBindAddress  = "health-probe-bind-address"
	FlagPprofBindAddress        = "pprof-bind-address"
	FlagShutdownDrain           = "shutdown-drain"
	FlagLeaderElect             = "leader-elect"
	FlagLeaderElectionNamespace = "leader-election-namespace"
	FlagNamespace               = "namespace"
	FlagExcludedNamespaces      = "excluded-namespaces"
	FlagDefaultMode             = "default-mode"
	FlagDefaultStorageSize      = "default-storage-size"
	FlagDefaultStorageClass     = "default-storage-class"
	FlagClusterDomain           = "cluster-domain"
	FlagEnableHTTP2             = "enable-http2"
	FlagLogFormat               = "log-format"
	FlagLogLevel                = "log-level"
	FlagKubeconfig              = "kubeconfig"
	FlagAudit                   = "audit"
	FlagAuditReports            = "audit-reports"
	FlagAuditInterval           = "audit-interval"
	FlagClaimTemplateResize     = "claim-template-resize"
	FlagVerifyAdmissionPolicies = "verify-admission-policies"
)

// EnvPrefix starts every environment twin of a flag.
const EnvPrefix = "STATEKEEPER_"

// envAliases are further environment variables read, in order, after a
// flag's own twin; POD_NAMESPACE is what the Downward API conventionally sets.
var envAliases = map[string][]string{
	FlagNamespace: {"POD_NAMESPACE"},
}

// EnvName is the environment twin of a flag: --webhook-port is STATEKEEPER_WEBHOOK_PORT.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envNames lists the variables read for a flag, in precedence order.
func envNames(flag string) []string {
	return append([]string{EnvName(flag)}, envAliases[flag]...)
}

// BindFlags binds every flag of `statekeeper serve` to c; c's current values
// are the defaults shown by --help.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	c.bindServerFlags(fs)
	c.BindPolicyFlags(fs)
	c.bindAuditFlags(fs)
	c.bindLogFlags(fs)
}

// bindAuditFlags binds the flags of the background audit.
func (c *Config) bindAuditFlags(fs *pflag.FlagSet) {
	own := pflag.NewFlagSet("audit", pflag.ContinueOnError)
	defer addWithEnv(fs, own)
	own.BoolVar(&c.Audit, FlagAudit, c.Audit,
		"audit the stored objects on the elected leader: at start, on changes and every --audit-interval")
	own.BoolVar(&c.AuditReports, FlagAuditReports, c.AuditReports,
		"write the audit's findings as wgpolicyk8s.io/v1alpha2 PolicyReports (needs their CRD)")
	own.DurationVar(&c.AuditInterval, FlagAuditInterval, c.AuditInterval,
		"period of the audit's full passes (0: only at start and on changes)")
}

// bindServerFlags binds the flags of the running server: listeners,
// certificates, leader election, its own namespace and the API server connection.
func (c *Config) bindServerFlags(fs *pflag.FlagSet) {
	own := pflag.NewFlagSet("server", pflag.ContinueOnError)
	defer addWithEnv(fs, own)
	own.StringVar(&c.WebhookHost, FlagWebhookHost, c.WebhookHost,
		"address the webhook server listens on (empty: all addresses)")
	own.IntVar(&c.WebhookPort, FlagWebhookPort, c.WebhookPort,
		"port the webhook server listens on")
	own.StringVar(&c.CertDir, FlagCertDir, c.CertDir,
		"directory holding tls.crt and tls.key, reloaded when they rotate (empty: <tmp>/k8s-webhook-server/serving-certs)")
	own.StringVar(&c.MetricsBindAddress, FlagMetricsBindAddress, c.MetricsBindAddress,
		`address of the Prometheus /metrics endpoint, "0" to disable`)
	own.StringVar(&c.HealthProbeBindAddress, FlagHealthProbeBindAddress, c.HealthProbeBindAddress,
		`address of the /healthz and /readyz endpoints, "0" to disable`)
	own.StringVar(&c.PprofBindAddress, FlagPprofBindAddress, c.PprofBindAddress,
		`address of Go's /debug/pprof endpoints, for profiling; "0" to disable`)
	own.DurationVar(&c.ShutdownDrain, FlagShutdownDrain, c.ShutdownDrain,
		"after SIGTERM, fail readiness and keep answering this long (closing keep-alive connections) before stopping; set it to how long the cluster takes to stop routing to a terminating pod (0: stop at once)")
	own.BoolVar(&c.LeaderElect, FlagLeaderElect, c.LeaderElect,
		"elect one replica at a time to run the reconcilers and the audit; one that loses the Lease stops them and campaigns again (webhooks serve on every replica)")
	own.StringVar(&c.LeaderElectionNamespace, FlagLeaderElectionNamespace, c.LeaderElectionNamespace,
		"namespace of the leader-election Lease (empty: the namespace statekeeper runs in)")
	own.StringVar(&c.Namespace, FlagNamespace, c.Namespace,
		"namespace statekeeper runs in; always excluded from review")
	own.BoolVar(&c.VerifyAdmissionPolicies, FlagVerifyAdmissionPolicies, c.VerifyAdmissionPolicies,
		"at start, check that the chart's ValidatingAdmissionPolicy acts: a server-side dry run in --namespace that its probe binding must deny (statekeeper_admission_policies_active)")
	own.BoolVar(&c.EnableHTTP2, FlagEnableHTTP2, c.EnableHTTP2,
		"also serve webhooks over HTTP/2 (off because of the HTTP/2 rapid-reset CVEs)")
	own.StringVar(&c.Kubeconfig, FlagKubeconfig, c.Kubeconfig,
		"kubeconfig file (empty: $KUBECONFIG, the in-cluster config, or ~/.kube/config)")
	own.StringVar(&c.ClaimTemplateResize, FlagClaimTemplateResize, c.ClaimTemplateResize,
		"how a claim template resized in a manifest is carried out: record (keep the stored template, record the size in statekeeper.io/claim-sizes, grow the claims), "+
			"native (the API server changes the template, KEP-4650; statekeeper only refuses what the claims cannot follow), "+
			"or auto (native when the API server lets claim templates change, asked at start)")
}

// BindPolicyFlags binds the flags that change decisions; `check` shares them
// with `serve` so that both decide alike.
func (c *Config) BindPolicyFlags(fs *pflag.FlagSet) {
	own := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	defer addWithEnv(fs, own)
	own.StringSliceVar(&c.ExcludedNamespaces, FlagExcludedNamespaces, c.ExcludedNamespaces,
		"comma-separated namespaces never reviewed (statekeeper's own namespace is added)")
	own.Var(&modeValue{&c.DefaultMode}, FlagDefaultMode,
		"mode of namespaces without the statekeeper.io/mode label: enforce, warn, audit or off")
	own.Var(&quantityValue{&c.DefaultStorageSize}, FlagDefaultStorageSize,
		"size of injected volume claims without the statekeeper.io/storage-size annotation")
	own.StringVar(&c.DefaultStorageClass, FlagDefaultStorageClass, c.DefaultStorageClass,
		"storage class of injected volume claims without the statekeeper.io/storage-class annotation (empty: the cluster default)")
	own.StringVar(&c.ClusterDomain, FlagClusterDomain, c.ClusterDomain,
		"cluster DNS domain of the pods' fully qualified names")
}

// bindLogFlags binds the logging flags.
func (c *Config) bindLogFlags(fs *pflag.FlagSet) {
	own := pflag.NewFlagSet("log", pflag.ContinueOnError)
	defer addWithEnv(fs, own)
	own.StringVar(&c.LogFormat, FlagLogFormat, c.LogFormat,
		"log encoding: json or console")
	own.StringVar(&c.LogLevel, FlagLogLevel, c.LogLevel,
		"debug, info, warn, error, or a verbosity from 0 to 127")
}

// envAnnotation marks the flags that have environment twins; its values are
// the variables' names in precedence order.
const envAnnotation = "statekeeper.io/env"

// addWithEnv adds own's flags to fs, each annotated with its environment
// twins and with them named in its --help text.
func addWithEnv(fs, own *pflag.FlagSet) {
	own.SortFlags = false // keep the order they were bound in, by topic
	own.VisitAll(func(f *pflag.Flag) {
		names := envNames(f.Name)
		f.Usage += envSuffix(names)
		f.Annotations = map[string][]string{envAnnotation: names}
	})
	fs.AddFlagSet(own)
}

// envSuffix names a flag's environment twins at the end of its usage.
func envSuffix(names []string) string { return " [env " + strings.Join(names, ", ") + "]" }

// EnvTwins returns the environment variables f reads, in precedence order
// (none for a flag Config does not bind), and its usage without them: what
// docs/spec.md's tables of flags show in columns of their own.
func EnvTwins(f *pflag.Flag) (names []string, usage string) {
	names = f.Annotations[envAnnotation]
	if len(names) == 0 {
		return nil, f.Usage
	}
	return names, strings.TrimSuffix(f.Usage, envSuffix(names))
}

// ApplyEnv fills every flag bound by Config that was not given on the command
// line from its environment twin, so that flags win over the environment and the
// environment over the defaults. Call it after fs.Parse. lookupEnv is
// os.LookupEnv outside tests.
func ApplyEnv(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		for _, name := range f.Annotations[envAnnotation] {
			value, ok := lookupEnv(name)
			if !ok {
				continue
			}
			// A slice flag's first Set replaces its default, so an
			// environment list is the whole list, as on the command line.
			if err := f.Value.Set(value); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (--%s): %w", name, value, f.Name, err))
			}
			f.Changed = true
			return
		}
	})
	return errors.Join(errs...)
}

// modeValue binds a policy.Mode to a flag, rejecting unknown modes at parse time.
type modeValue struct{ mode *policy.Mode }

func (v *modeValue) String() string { return string(*v.mode) }
func (v *modeValue) Type() string   { return "mode" }
func (v *modeValue) Set(s string) error {
	m, err := policy.ParseMode(s)
	if err != nil {
		return err
	}
	*v.mode = m
	return nil
}

// quantityValue binds a resource.Quantity to a flag.
type quantityValue struct{ q *resource.Quantity }

func (v *quantityValue) String() string { return v.q.String() }
func (v *quantityValue) Type() string   { return "quantity" }
func (v *quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("%q is not a resource quantity such as 1Gi or 500Mi", s)
	}
	*v.q = q
	return nil
}
