// Package config is statekeeper's typed configuration: one Config with its
// defaults, its validation, and its binding to kebab-case command-line flags,
// each with an environment-variable twin (STATEKEEPER_<UPPER_SNAKE>).
package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Log formats.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// How a claim template resized in a manifest is carried out (--claim-template-resize).
const (
	// ClaimTemplateResizeAuto asks the API server at start whether it lets
	// claim templates change, and records otherwise.
	ClaimTemplateResizeAuto = "auto"
	// ClaimTemplateResizeRecord keeps the stored template and records the
	// larger size in statekeeper.io/claim-sizes; statekeeper grows the claims.
	ClaimTemplateResizeRecord = "record"
	// ClaimTemplateResizeNative leaves the resized template to the API
	// server (KEP-4650); statekeeper keeps its refusals only.
	ClaimTemplateResizeNative = "native"
)

// ClaimTemplateResizes lists the valid --claim-template-resize values.
var ClaimTemplateResizes = []string{ClaimTemplateResizeAuto, ClaimTemplateResizeRecord, ClaimTemplateResizeNative}

// Config is everything `statekeeper serve` and `statekeeper check` can be told.
type Config struct {
	// WebhookHost and WebhookPort are where the TLS webhook server listens;
	// an empty host means all addresses.
	WebhookHost string
	WebhookPort int
	// CertDir holds tls.crt and tls.key; they are reloaded when they change.
	// Empty means controller-runtime's default, <tmp>/k8s-webhook-server/serving-certs.
	CertDir string

	// MetricsBindAddress and HealthProbeBindAddress are "host:port", or "0" to disable.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's profiler: "host:port", or "0" (the
	// default) to disable. Never expose it beyond the pod.
	PprofBindAddress string

	// ShutdownDrain is how long the server keeps answering after SIGTERM,
	// with readiness failing, before it stops: the endpoints that route to a
	// terminating replica are updated a moment after it is told to stop.
	ShutdownDrain time.Duration

	// LeaderElect elects one replica to run the reconciler; webhooks serve on every replica.
	LeaderElect             bool
	LeaderElectionNamespace string

	// Namespace is statekeeper's own namespace; it is always excluded.
	Namespace string
	// ExcludedNamespaces are never reviewed (docs/spec.md §6).
	ExcludedNamespaces []string
	// DefaultMode applies to namespaces without the statekeeper.io/mode label.
	DefaultMode policy.Mode
	// DefaultStorageSize and DefaultStorageClass fill injected claim templates
	// when the StatefulSet's annotations do not.
	DefaultStorageSize  resource.Quantity
	DefaultStorageClass string
	// ClusterDomain builds the pods' fully qualified names.
	ClusterDomain string
	// ClaimTemplateResize is one of ClaimTemplateResizes.
	ClaimTemplateResize string

	// Audit runs the background audit on the elected leader: findings as
	// metrics and Events, and as PolicyReports when AuditReports is set.
	Audit        bool
	AuditReports bool
	// AuditInterval is the period of the audit's full passes; 0 audits only
	// at start and on changes.
	AuditInterval time.Duration

	// VerifyAdmissionPolicies checks at start that the chart's
	// ValidatingAdmissionPolicy acts (a dry run in Namespace its probe
	// binding must deny), for readiness, a metric and a log line.
	VerifyAdmissionPolicies bool

	// EnableHTTP2 serves the webhook over HTTP/2 too; off by default because of
	// the HTTP/2 rapid-reset and stream-cancellation CVEs.
	EnableHTTP2 bool

	LogFormat string
	// LogLevel is debug, info, warn, error, or a logr verbosity V as a positive integer.
	LogLevel string

	// Kubeconfig is a kubeconfig path; empty means --kubeconfig's usual
	// fallbacks (KUBECONFIG, in-cluster, ~/.kube/config).
	Kubeconfig string
}

// DefaultExcludedNamespaces are the system namespaces statekeeper never reviews.
var DefaultExcludedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Default returns the configuration of docs/spec.md §7 with no flags given.
func Default() Config {
	return Config{
		WebhookPort:            9443,
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		PprofBindAddress:       "0",
		ExcludedNamespaces:     slices.Clone(DefaultExcludedNamespaces),
		DefaultMode:            policy.ModeEnforce,
		DefaultStorageSize:     resource.MustParse("1Gi"),
		ClusterDomain:          "cluster.local",
		ClaimTemplateResize:    ClaimTemplateResizeAuto,
		LogFormat:              LogFormatJSON,
		LogLevel:               "info",
		Audit:                  true,
		AuditReports:           true,
		AuditInterval:          time.Hour,
	}
}

// Validate reports every setting that cannot be used, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	add := func(flag string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: "+format, append([]any{flag}, args...)...))
	}
	if c.WebhookPort < 1 || c.WebhookPort > 65535 {
		add(FlagWebhookPort, "port must be between 1 and 65535, got %d", c.WebhookPort)
	}
	if err := validateBindAddress(c.MetricsBindAddress); err != nil {
		add(FlagMetricsBindAddress, "%v", err)
	}
	if err := validateBindAddress(c.HealthProbeBindAddress); err != nil {
		add(FlagHealthProbeBindAddress, "%v", err)
	}
	if err := validateBindAddress(c.PprofBindAddress); err != nil {
		add(FlagPprofBindAddress, "%v", err)
	}
	if c.ShutdownDrain < 0 {
		add(FlagShutdownDrain, "must not be negative, got %s", c.ShutdownDrain)
	}
	if _, err := policy.ParseMode(string(c.DefaultMode)); err != nil {
		add(FlagDefaultMode, "%v", err)
	}
	if c.DefaultStorageSize.Sign() <= 0 {
		add(FlagDefaultStorageSize, "storage size must be positive, got %q", c.DefaultStorageSize.String())
	}
	if c.DefaultStorageClass != "" {
		for _, msg := range validation.IsDNS1123Subdomain(c.DefaultStorageClass) {
			add(FlagDefaultStorageClass, "%q is not a valid storage class name: %s", c.DefaultStorageClass, msg)
		}
	}
	for _, ns := range c.ExcludedNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			add(FlagExcludedNamespaces, "%q is not a valid namespace name: %s", ns, msg)
		}
	}
	if c.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(c.Namespace) {
			add(FlagNamespace, "%q is not a valid namespace name: %s", c.Namespace, msg)
		}
	}
	if c.VerifyAdmissionPolicies && c.Namespace == "" {
		add(FlagVerifyAdmissionPolicies, "needs --%s: the probe runs in statekeeper's own namespace, where only the probe binding of the chart's policy acts", FlagNamespace)
	}
	if c.ClusterDomain == "" {
		add(FlagClusterDomain, "must not be empty")
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(c.ClusterDomain) {
			add(FlagClusterDomain, "%q is not a valid domain: %s", c.ClusterDomain, msg)
		}
	}
	if !slices.Contains(ClaimTemplateResizes, c.ClaimTemplateResize) {
		add(FlagClaimTemplateResize, "unknown value %q: must be %s", c.ClaimTemplateResize, strings.Join(ClaimTemplateResizes, ", "))
	}
	if c.AuditInterval < 0 {
		add(FlagAuditInterval, "must not be negative, got %s", c.AuditInterval)
	}
	if c.LogFormat != LogFormatJSON && c.LogFormat != LogFormatConsole {
		add(FlagLogFormat, "unknown log format %q: must be %q or %q", c.LogFormat, LogFormatJSON, LogFormatConsole)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		add(FlagLogLevel, "%v", err)
	}
	return errors.Join(errs...)
}

// Excluded is the full list of namespaces statekeeper never reviews: the
// configured ones plus its own.
func (c Config) Excluded() []string {
	out := slices.Clone(c.ExcludedNamespaces)
	if c.Namespace != "" && !slices.Contains(out, c.Namespace) {
		out = append(out, c.Namespace)
	}
	return out
}

// Defaults are the storage defaults the mutations fall back to.
func (c Config) Defaults() policy.Defaults {
	return policy.Defaults{StorageSize: c.DefaultStorageSize, StorageClass: c.DefaultStorageClass}
}

// LogLevel is a parsed --log-level: a zap level, where verbosity V is -V.
type LogLevel int8

// ParseLogLevel accepts debug, info, warn, error, or a logr verbosity (0-127).
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(s) {
	case "debug":
		return -1, nil
	case "info":
		return 0, nil
	case "warn":
		return 1, nil
	case "error":
		return 2, nil
	}
	if v, err := strconv.ParseUint(s, 10, 7); err == nil {
		return LogLevel(-int8(v)), nil
	}
	return 0, fmt.Errorf("unknown log level %q: must be debug, info, warn, error or a verbosity from 0 to 127", s)
}

// validateBindAddress accepts "0" (disabled) or "host:port".
func validateBindAddress(addr string) error {
	if addr == "0" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not \"host:port\" or \"0\" to disable: %v", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be a number between 0 and 65535", addr)
	}
	return nil
}
