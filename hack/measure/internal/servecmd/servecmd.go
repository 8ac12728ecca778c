// Package servecmd is the command line the measurements under hack/measure
// run `statekeeper serve` with: the real binary and its real flags, on
// addresses of the measurement's choosing. No webhook configuration points
// at it: the measurements call it (or read its caches) directly.
package servecmd

import (
	"fmt"
	"syscall"

	"github.com/statekeeper/statekeeper/test/podproc"
)

// Options say how to run `statekeeper serve`.
type Options struct {
	Binary, Kubeconfig, CertDir, LogFile string
	// Namespace is statekeeper's own (--namespace): its Lease lives there.
	Namespace                     string
	WebhookPort                   int
	MetricsAddress, HealthAddress string
	// LeaderElect runs the reconcilers and the audit (they are leader-elected).
	LeaderElect bool
	// Env is added to the process's environment (GOMEMLIMIT, for one).
	Env []string
	// Args are more flags of serve.
	Args []string
}

// Command is the process to start.
func (o Options) Command() podproc.Command {
	args := []string{"serve",
		"--kubeconfig", o.Kubeconfig,
		"--cert-dir", o.CertDir,
		"--webhook-host", "127.0.0.1",
		"--webhook-port", fmt.Sprint(o.WebhookPort),
		"--metrics-bind-address", o.MetricsAddress,
		"--health-probe-bind-address", o.HealthAddress,
		"--namespace", o.Namespace,
		fmt.Sprintf("--leader-elect=%t", o.LeaderElect),
	}
	return podproc.Command{
		Name: "statekeeper", Binary: o.Binary, Args: append(args, o.Args...), Env: o.Env, Log: o.LogFile,
		// A measurement stopped without its cleanup must not leave a
		// statekeeper holding the Lease.
		EndWithParent: syscall.SIGTERM,
	}
}

// ReadyURL is where the process answers its readiness probe: 200 once its
// caches are synced and its webhook server listens.
func (o Options) ReadyURL() string { return "http://" + o.HealthAddress + "/readyz" }

// MetricsURL is where the process serves /metrics.
func (o Options) MetricsURL() string { return "http://" + o.MetricsAddress + "/metrics" }
