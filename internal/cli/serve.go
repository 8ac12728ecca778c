package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/server"
)

var serveHelp = commandHelp{
	usage: "serve [flags]",
	description: `Runs the admission webhook server (TLS, certificates reloaded from --cert-dir when
they rotate), /healthz and /readyz on --health-probe-bind-address and Prometheus
metrics on --metrics-bind-address; and, while it holds the leader-election Lease,
the reconcilers and the audit (losing the Lease stops them, not the server).
On SIGTERM it fails readiness and keeps answering for --shutdown-drain, then
finishes the requests in flight and releases the leader-election Lease.
Every flag can also be set through the environment variable named beside it;
a flag given on the command line wins.`,
}

// serveFlags is serve's flag set, bound to cfg.
func serveFlags(cfg *config.Config) *pflag.FlagSet {
	fs := newFlagSet("serve")
	cfg.BindFlags(fs)
	return fs
}

func runServe(args []string, s streams) int {
	cfg := config.Default()
	fs := serveFlags(&cfg)
	if code, done := parseFlags(fs, args, serveHelp, s); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(s.stderr, "error: serve takes no arguments, got %q\n", fs.Args())
		return ExitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(s.stderr, "error: invalid configuration:\n%v\n", err)
		return ExitUsage
	}
	if err := server.CheckCertificates(cfg.CertDir); err != nil {
		fmt.Fprintf(s.stderr, "error: %v\n", err)
		return ExitUsage
	}

	logger, flush, err := server.NewLogger(cfg, s.stderr)
	if err != nil {
		fmt.Fprintf(s.stderr, "error: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = flush() }()
	ctrl.SetLogger(logger)
	klog.SetLogger(logger.WithName("client-go")) // client-go logs in the same format
	log := logger.WithName("serve")

	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		log.Error(err, "Cannot load the API server configuration")
		return ExitFailure
	}
	srv, err := server.New(cfg, rc)
	if err != nil {
		log.Error(err, "Cannot set up the server")
		return ExitFailure
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second signal during the drain or the graceful shutdown kills
		// the process.
		<-ctx.Done()
		stop()
	}()
	log.Info("Starting statekeeper", "version", Version(),
		"webhookPort", cfg.WebhookPort, "defaultMode", cfg.DefaultMode, "excludedNamespaces", cfg.Excluded(), "shutdownDrain", cfg.ShutdownDrain)
	if err := srv.Start(ctx); err != nil {
		log.Error(err, "Server stopped with an error")
		return ExitFailure
	}
	return ExitOK
}

// restConfig loads an explicit kubeconfig, or else falls back as
// controller-runtime does ($KUBECONFIG, in-cluster, ~/.kube/config).
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrlconfig.GetConfig()
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, &clientcmd.ConfigOverrides{},
	).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", config.FlagKubeconfig, kubeconfig, err)
	}
	// As controller-runtime's loader: no client-side throttling, the API
	// server's priority and fairness governs.
	if rc.QPS == 0 {
		rc.QPS = -1
	}
	return rc, nil
}
