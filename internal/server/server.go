// Package server wires statekeeper into a controller-runtime manager: the TLS
// webhook server, the informer caches and their indexes, the review engine
// behind the admission handlers, health and readiness probes and metrics on
// every replica, and the reconcilers and the audit on the elected leader
// (election.go). New is the one wiring point.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/reconciler"
	"github.com/statekeeper/statekeeper/internal/review"
	skwebhook "github.com/statekeeper/statekeeper/internal/webhook"
)

// LeaderElectionID names the Lease the replicas compete for.
const LeaderElectionID = "statekeeper.statekeeper.io"

// Certificate file names in --cert-dir, as cert-manager's Secrets name them.
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
)

// Server is statekeeper's manager with its graceful shutdown.
type Server struct {
	manager.Manager
	drain       *drain
	drainPeriod time.Duration
}

// Start runs the server until ctx is done, then shuts it down without
// dropping requests: readiness fails and the webhooks keep answering for
// cfg.ShutdownDrain, then the requests in flight finish and the Lease is
// released (see shutdown.go).
func (s *Server) Start(ctx context.Context) error {
	return runWithDrain(ctx, s.Manager, s.drain, s.drainPeriod, time.After, s.GetLogger().WithName("shutdown"))
}

// New builds the server that `statekeeper serve` starts. cfg must have passed
// Validate. New registers statekeeper's metrics on controller-runtime's
// process-wide registry, so it is called once per process. Tests run it against envtest with cfg.WebhookHost, WebhookPort and
// CertDir from envtest's WebhookInstallOptions and MetricsBindAddress and
// HealthProbeBindAddress "0"; nothing else is needed.
func New(cfg config.Config, rc *rest.Config) (*Server, error) {
	return build(cfg, rc, func(*manager.Options) {})
}

// build is New with a last say on the manager's options, for tests.
func build(cfg config.Config, rc *rest.Config, customize func(*manager.Options)) (*Server, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	// The serving certificate is read here rather than by the webhook
	// server, so that its expiry is a metric (metrics.go).
	certs, err := certwatcher.New(filepath.Join(certDir(cfg), CertName), filepath.Join(certDir(cfg), KeyName))
	if err != nil {
		return nil, fmt.Errorf("reading the serving certificate: %w", err)
	}
	d := &drain{}
	opts := managerOptions(cfg, scheme, certs)
	opts.WebhookServer = drainingWebhookServer{Server: opts.WebhookServer, drain: d}
	customize(&opts)
	mgr, err := manager.New(rc, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := setup(mgr, rc, cfg, d); err != nil {
		return nil, err
	}
	if err := watchServingCertificate(ctrlmetrics.Registry, certs); err != nil {
		return nil, err
	}
	// The watcher re-reads rotated files until the manager stops.
	if err := mgr.Add(certs); err != nil {
		return nil, fmt.Errorf("adding the certificate watcher: %w", err)
	}
	return &Server{Manager: mgr, drain: d, drainPeriod: cfg.ShutdownDrain}, nil
}

// managerOptions are the manager's options; the webhook server serves the
// certificates of certs (nil: it reads --cert-dir itself).
func managerOptions(cfg config.Config, scheme *runtime.Scheme, certs *certwatcher.CertWatcher) manager.Options {
	tlsOpts := []func(*tls.Config){}
	if !cfg.EnableHTTP2 {
		// HTTP/2 stream cancellation and rapid reset (CVE-2023-44487,
		// CVE-2023-39325) let a client exhaust the server; the API server
		// talks HTTP/1.1 to webhooks just as well, so offer only that.
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	webhookTLSOpts := slices.Clip(tlsOpts)
	if certs != nil {
		webhookTLSOpts = append(webhookTLSOpts, func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	}
	return manager.Options{
		Scheme: scheme,
		// One cache for the lookups and the reconciler, which reads only
		// what the lookups cache (reconciler.Reconciler says what it needs).
		Cache: lookup.CacheOptions(),
		// The webhook server does not need leader election: every replica
		// answers admission requests. Only the reconciler is elected.
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    cfg.WebhookHost,
			Port:    cfg.WebhookPort,
			CertDir: cfg.CertDir,
			// certs (controller-runtime's certwatcher) watches these two
			// files and serves rotated certificates without a restart.
			CertName: CertName,
			KeyName:  KeyName,
			TLSOpts:  webhookTLSOpts,
		}),
		Metrics: metricsserver.Options{
			BindAddress: cfg.MetricsBindAddress,
			TLSOpts:     tlsOpts,
		},
		HealthProbeBindAddress: cfg.HealthProbeBindAddress,
		PprofBindAddress:       cfg.PprofBindAddress,
		// No leader election for the manager: it would end the process,
		// webhook server and all, whenever the Lease is lost. The leader's
		// work campaigns on its own (election.go).
	}
}

// leaseNamespace is the namespace of the leader-election Lease.
func leaseNamespace(cfg config.Config) string {
	if cfg.LeaderElectionNamespace != "" {
		return cfg.LeaderElectionNamespace
	}
	return cfg.Namespace
}

// setup registers everything statekeeper runs on mgr.
func setup(mgr manager.Manager, rc *rest.Config, cfg config.Config, d *drain) error {
	ctx := context.Background() // IndexField only records the index before the cache starts
	if err := lookup.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing the cache: %w", err)
	}
	// Start the informers with the manager rather than on the first
	// admission request, so that readiness (below) means warm caches.
	if err := lookup.StartInformers(ctx, mgr.GetCache()); err != nil {
		return err
	}

	// The admission metrics are served beside controller-runtime's webhook
	// metrics; the registry is per process, so is New.
	metrics, err := skwebhook.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	settings := review.SettingsFrom(cfg)
	if cfg.ClaimTemplateResize == config.ClaimTemplateResizeAuto {
		settings.ClaimTemplatesMutable = servesMutableClaimTemplates(mgr, rc, cfg)
	}
	engine := review.New(lookup.NewCache(mgr.GetCache(), mgr.GetAPIReader()), settings)
	skwebhook.Register(mgr.GetWebhookServer(), engine, WithoutCaller(mgr.GetLogger().WithName("admission")), metrics)

	if err := setupLeader(mgr, rc, cfg, engine); err != nil {
		return err
	}

	// Liveness is a ping on purpose: it reads no cache and asks no API
	// server, so a busy or lagging replica is not restarted, while a
	// process that runs no code at all (stopped, starved of CPU) answers
	// nothing and is. Readiness dials the webhook port over TLS
	// ("webhook"), so a replica whose server no longer accepts leaves the
	// endpoints (docs/faults.md, "A replica that hangs").
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	readiness := []readinessCheck{
		{"webhook", mgr.GetWebhookServer().StartedChecker()},
		{"cache", cacheSynced(mgr.GetCache())},
		{"shutdown", d.readyz()},
	}
	if cfg.VerifyAdmissionPolicies {
		probe, err := setupPolicyProbe(mgr, cfg)
		if err != nil {
			return err
		}
		readiness = append(readiness, probe)
	}
	for _, c := range readiness {
		if err := mgr.AddReadyzCheck(c.name, c.check); err != nil {
			return fmt.Errorf("adding the %s readiness check: %w", c.name, err)
		}
	}
	return registerReady(ctrlmetrics.Registry, readiness)
}

// setupPolicyProbe registers the start-up check that the admission policy
// acts (policyProbe), on every replica: each reports its own view. Its
// readiness check passes once the probe has an answer.
func setupPolicyProbe(mgr manager.Manager, cfg config.Config) (readinessCheck, error) {
	active, err := registerPoliciesActive(ctrlmetrics.Registry)
	if err != nil {
		return readinessCheck{}, err
	}
	probe := &policyProbe{client: mgr.GetClient(), namespace: cfg.Namespace, active: active, log: mgr.GetLogger().WithName("admission-policies")}
	if err := mgr.Add(probe); err != nil {
		return readinessCheck{}, err
	}
	return readinessCheck{"admission-policies", probe.readyz}, nil
}

// setupLeader registers the leader's work: the reconcilers and, with
// cfg.Audit, the background audit. With cfg.LeaderElect it runs in the
// terms of a campaign for the Lease; without, for the life of the process.
func setupLeader(mgr manager.Manager, rc *rest.Config, cfg config.Config, engine *review.Engine) error {
	var auditMetrics *audit.Metrics
	if cfg.Audit {
		var err error
		if auditMetrics, err = audit.NewMetrics(ctrlmetrics.Registry); err != nil {
			return err
		}
	}
	claimsAwaiting, err := reconciler.NewClaimsAwaitingGauge(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	// register adds the leader's controllers to a term's manager.
	register := func(term manager.Manager) error {
		if err := reconciler.SetupWithManager(term, reconciler.Options{
			InScope: engine.InScope, ClusterDomain: cfg.ClusterDomain, ClaimsAwaiting: claimsAwaiting,
		}); err != nil {
			return fmt.Errorf("setting up the reconcilers: %w", err)
		}
		if !cfg.Audit {
			return nil
		}
		// Without the PolicyReport CRD the audit still publishes metrics,
		// Events and log lines.
		if err := audit.SetupWithManager(term, audit.Options{
			Engine: engine, Interval: cfg.AuditInterval, Reports: cfg.AuditReports, Metrics: auditMetrics,
		}); err != nil {
			return fmt.Errorf("setting up the audit: %w", err)
		}
		return nil
	}
	// Built once here so that a mistake fails start-up, not every term.
	if err := register(newTermManager(mgr)); err != nil {
		return err
	}
	leading, err := registerLeading(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	lead := func(ctx context.Context) error {
		term := newTermManager(mgr)
		if err := register(term); err != nil {
			return err
		}
		leading.Set(1)
		defer leading.Set(0)
		defer auditMetrics.Forget() // the next leader's audit counts now
		defer claimsAwaiting.Reset()
		return term.run(ctx)
	}
	if !cfg.LeaderElect {
		return mgr.Add(manager.RunnableFunc(lead))
	}
	lock, err := leaderelection.NewResourceLock(rc, mgr, leaderelection.Options{
		LeaderElection:          true,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: leaseNamespace(cfg),
		RenewDeadline:           renewDeadline,
	})
	if err != nil {
		return fmt.Errorf("setting up leader election: %w", err)
	}
	return mgr.Add(newCampaign(lock, lead, mgr.GetLogger().WithName("leader-election")))
}

// cacheSynced is ready once every informer has synced: before that an
// admission request would wait for the sync inside the API server's timeout.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced yet")
		}
		return nil
	}
}

// certDir is the serving certificate's directory, --cert-dir or
// controller-runtime's default.
func certDir(cfg config.Config) string {
	if cfg.CertDir != "" {
		return cfg.CertDir
	}
	return defaultCertDir()
}

func defaultCertDir() string {
	return filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
}

// CheckCertificates reports a missing serving certificate or key in certDir
// (controller-runtime's default directory when empty) before the manager
// starts, so that `serve` fails with a message that says which file is missing.
func CheckCertificates(certDir string) error {
	if certDir == "" {
		certDir = defaultCertDir()
	}
	var errs []error
	for _, name := range []string{CertName, KeyName} {
		path := filepath.Join(certDir, name)
		switch _, err := os.Stat(path); {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("--%s: %s is missing", config.FlagCertDir, path))
		case err != nil:
			errs = append(errs, fmt.Errorf("--%s: %w", config.FlagCertDir, err))
		}
	}
	return errors.Join(errs...)
}

// servesMutableClaimTemplates asks the API server whether it lets claim
// templates change (--claim-template-resize auto); when it cannot tell,
// statekeeper records the sizes itself, which works on every API server.
func servesMutableClaimTemplates(mgr manager.Manager, rc *rest.Config, cfg config.Config) bool {
	log := mgr.GetLogger().WithName("claim-templates")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		log.Error(err, "cannot ask the API server whether claim templates can change; recording resized templates")
		return false
	}
	c, err := client.New(rc, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		log.Error(err, "cannot ask the API server whether claim templates can change; recording resized templates")
		return false
	}
	native, err := review.ServesMutableClaimTemplates(ctx, openapi.ToClientWithContext(dc.OpenAPIV3()), c, cfg.Namespace)
	if err != nil {
		log.Error(err, "cannot tell whether claim templates can change; recording resized templates")
		return false
	}
	log.Info("resized claim templates", "native", native)
	return native
}
