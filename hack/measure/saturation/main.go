// Command saturation measures how many admission reviews per second
// statekeeper's webhook server answers, against baselines measured in the
// same run on the same machine: a no-op TLS server (what HTTPS keep-alive
// costs) and controller-runtime's stock admission webhook with a handler
// that allows everything (what decoding a review costs). Each server gets
// the same StatefulSet CREATE AdmissionReview bodies (about 1 KB and 66 KB)
// over the same number of keep-alive connections on loopback, in rounds
// that interleave the servers, and the tool reports the median answers per
// second and the median ratio to the no-op TLS server of the same round.
//
// statekeeper runs as `statekeeper serve` against a cluster (its caches need
// one); the baselines run as child processes of this tool. Everything stops
// by itself after rounds × bodies × servers × (warm-up + duration).
//
// It is built in hack/measure (a module of its own) and run from the
// repository's root, which its default paths are relative to:
//
//	(cd hack/measure && go build -o ../../bin/measure-saturation ./saturation)
//	bin/measure-saturation --kubeconfig .local/kubeconfig --statekeeper bin/statekeeper --cert-dir DIR
//
// `make measure-saturation` runs it against the local cluster.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/statekeeper/statekeeper/hack/measure/internal/servecmd"
	skwebhook "github.com/statekeeper/statekeeper/internal/webhook"
	"github.com/statekeeper/statekeeper/test/podproc"

	"github.com/statekeeper/statekeeper/hack/measure/internal/command"
)

type options struct {
	server      servecmd.Options
	logDir      string
	noopPorts   [2]int
	namespace   string
	connections int
	rounds      int
	warmup      time.Duration
	duration    time.Duration
	profileDir  string
	pprofAddr   string
}

func main() {
	// The baselines are this binary with a server subcommand.
	if len(os.Args) == 4 && os.Args[1] == serveNoopTLS {
		command.Exit("saturation", runNoopTLS(os.Args[2], os.Args[3]))
	}
	if len(os.Args) == 4 && os.Args[1] == serveNoopWebhook {
		port, err := strconv.Atoi(os.Args[2])
		if err == nil {
			err = runNoopWebhook("127.0.0.1", port, os.Args[3])
		}
		command.Exit("saturation", err)
	}

	var o options
	fs := flag.NewFlagSet("saturation", flag.ExitOnError)
	fs.StringVar(&o.server.Kubeconfig, "kubeconfig", ".local/kubeconfig", "kubeconfig of the cluster statekeeper's caches read")
	fs.StringVar(&o.server.Binary, "statekeeper", "bin/statekeeper", "the statekeeper binary")
	fs.StringVar(&o.server.CertDir, "cert-dir", "", "directory with ca.crt, tls.crt and tls.key for 127.0.0.1, served by every server")
	fs.StringVar(&o.logDir, "log-dir", ".local/measure", "where the servers' logs go")
	fs.StringVar(&o.server.Namespace, "system-namespace", "statekeeper-saturation-system", "statekeeper's own namespace (excluded from review)")
	fs.IntVar(&o.server.WebhookPort, "webhook-port", 19543, "port of statekeeper's webhook server")
	fs.StringVar(&o.server.MetricsAddress, "metrics-address", "127.0.0.1:18180", "where statekeeper serves /metrics")
	fs.StringVar(&o.server.HealthAddress, "health-address", "127.0.0.1:18181", "where statekeeper serves /readyz")
	fs.IntVar(&o.noopPorts[0], "noop-tls-port", 19544, "port of the no-op TLS server")
	fs.IntVar(&o.noopPorts[1], "noop-webhook-port", 19545, "port of controller-runtime's no-op webhook")
	fs.StringVar(&o.namespace, "namespace", "statekeeper-saturation", "namespace of the reviewed StatefulSet; created (enforce mode) and deleted")
	fs.IntVar(&o.connections, "connections", 8, "keep-alive HTTPS connections per server, each one request at a time")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds over every server and body (medians are reported)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before each measurement that is not counted")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "measured load per server, body and round")
	fs.StringVar(&o.profileDir, "profile-dir", "", "when set, write a CPU profile of statekeeper per path and body of the last round here")
	fs.StringVar(&o.pprofAddr, "pprof-address", "127.0.0.1:18182", "where statekeeper serves pprof when --profile-dir is set")
	_ = fs.Parse(os.Args[1:])
	if o.server.CertDir == "" || o.connections < 1 || o.rounds < 1 || o.duration <= 0 {
		fmt.Fprintln(os.Stderr, "saturation: --cert-dir is required; --connections, --rounds and --duration must be positive")
		fs.Usage()
		os.Exit(2)
	}
	command.Run("saturation", func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) (err error) {
	rc, err := clientcmd.BuildConfigFromFlags("", o.server.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", o.server.Kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(o.server.CertDir, "ca.crt"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no certificate in %s/ca.crt", o.server.CertDir)
	}
	if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		return err
	}
	for _, ns := range []string{o.server.Namespace, o.namespace} {
		if err := ensureNamespace(ctx, kube, ns); err != nil {
			return err
		}
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, ns := range []string{o.namespace, o.server.Namespace} {
			if e := kube.CoreV1().Namespaces().Delete(cleanup, ns, metav1.DeleteOptions{}); e != nil && !apierrors.IsNotFound(e) {
				err = errors.Join(err, e)
			}
		}
	}()
	bodies, err := reviewBodies(o.namespace)
	if err != nil {
		return err
	}

	o.server.LogFile = filepath.Join(o.logDir, "saturation-statekeeper.log")
	if o.profileDir != "" {
		o.server.Args = append(o.server.Args, "--pprof-bind-address", o.pprofAddr)
	}
	log("starting statekeeper (log %s) and the baselines", o.server.LogFile)
	if err := podproc.FreshLog(o.server.LogFile); err != nil {
		return err
	}
	sk, err := podproc.Start(o.server.Command())
	if err != nil {
		return err
	}
	defer stop(sk)
	noopTLSAddr := fmt.Sprintf("127.0.0.1:%d", o.noopPorts[0])
	noopTLS, err := startBaseline(ctx, filepath.Join(o.logDir, "saturation-noop-tls.log"), noopTLSAddr, serveNoopTLS, noopTLSAddr, o.server.CertDir)
	if err != nil {
		return err
	}
	defer stop(noopTLS)
	noopWebhookAddr := fmt.Sprintf("127.0.0.1:%d", o.noopPorts[1])
	noopWebhook, err := startBaseline(ctx, filepath.Join(o.logDir, "saturation-noop-webhook.log"), noopWebhookAddr,
		serveNoopWebhook, strconv.Itoa(o.noopPorts[1]), o.server.CertDir)
	if err != nil {
		return err
	}
	defer stop(noopWebhook)
	if err := sk.WaitReady(ctx, o.server.ReadyURL(), 2*time.Minute); err != nil {
		return err
	}

	skURL := fmt.Sprintf("https://127.0.0.1:%d", o.server.WebhookPort)
	targets := []target{
		{name: "no-op TLS server", url: "https://" + noopTLSAddr + noopPath, pid: noopTLS.Pid()},
		{name: "controller-runtime no-op webhook", url: "https://" + noopWebhookAddr + noopPath, checkReview: true, pid: noopWebhook.Pid()},
		{name: "statekeeper " + skwebhook.PathValidate, url: skURL + skwebhook.PathValidate, checkReview: true, statekeeper: true, pid: sk.Pid()},
		{name: "statekeeper " + skwebhook.PathMutate, url: skURL + skwebhook.PathMutate, checkReview: true, statekeeper: true, pid: sk.Pid()},
	}
	l := loader{roots: roots, connections: o.connections, warmup: o.warmup, duration: o.duration}
	r := result{options: o, bodies: bodies, targets: targets, decisions: map[key]string{}, runs: map[key][]outcome{}}
	for _, b := range bodies {
		for _, t := range targets {
			resp, err := l.check(ctx, t, b)
			if err != nil {
				return fmt.Errorf("%s body: %w", b.name, err)
			}
			r.decisions[key{t.name, b.name}] = describe(resp)
		}
	}
	for round := range o.rounds {
		for _, b := range bodies {
			for _, t := range targets {
				var stopProfile func() error
				if o.profileDir != "" && round == o.rounds-1 && t.statekeeper {
					name := fmt.Sprintf("cpu-%s-%s.pprof", path.Base(t.url), strings.ReplaceAll(b.name, " ", ""))
					stopProfile = startProfile(ctx, o.pprofAddr, o.warmup, o.duration, filepath.Join(o.profileDir, name))
				}
				out, err := l.run(ctx, t, b)
				if err != nil {
					return fmt.Errorf("round %d, %s body: %w", round+1, b.name, err)
				}
				if stopProfile != nil {
					if err := stopProfile(); err != nil {
						return err
					}
				}
				k := key{t.name, b.name}
				r.runs[k] = append(r.runs[k], out)
				log("round %d, %s, %s: %.0f/s, %.0f µs of CPU per answer (%d failed)", round+1, b.name, t.name, out.perSecond,
					float64(out.cpuPerAnswer.Nanoseconds())/1e3, out.failed)
			}
		}
		if err := sk.Exited(); err != nil {
			return err
		}
	}
	report(os.Stdout, r)
	return nil
}

// stop stops a server; one that had to be killed is said, the readings stand.
func stop(p *podproc.Process) {
	if err := p.Stop(20 * time.Second); err != nil {
		log("%v", err)
	}
}

func ensureNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format(time.TimeOnly)}, args...)...)
}
