// Command throughapi measures what statekeeper costs where users see it:
// the latency of writes through the API server, and the webhook process's
// CPU per 1,000 admissions. In one run on one cluster it points the chart's
// webhook configurations (rendered as hack/run.sh renders them, webhook.url
// at a local process) in turn at:
//
//   - nothing (no webhook configurations),
//   - controller-runtime's admission.Webhook answering Allowed (no-op),
//   - the same, answering each request with the patch statekeeper gave the
//     same request in an unmeasured priming round (same-patch no-op): what
//     the API server's applying the patch costs,
//   - each statekeeper binary given (--statekeeper NAME=PATH, two or more:
//     say, the current main's and a branch's),
//   - with --policy, the first statekeeper with the chart's admission policy
//     installed beside its webhooks (rendered as where the API server serves
//     ValidatingAdmissionPolicy: the webhooks then leave to the policy the
//     updates that need no lookup),
//
// in rounds that interleave the variants (each round in another order) to
// cancel drift. A round is a burst of managed Deployment creates, --concurrency
// at a time, then a steady mix at --mix-rate writes per second of Deployment
// creates, UPDATEs, /scale writes and creates of pods owned by a managed
// StatefulSet, then a rollout: an image bump of every burst Deployment,
// --concurrency at a time; then the webhooks are unregistered and what the
// round wrote is deleted. Every server runs from the start to the end as a process of its
// own. statekeeper runs as `statekeeper serve` with leader election, and the
// tool holds the Lease for the whole run: each statekeeper is a replica that
// serves webhooks from its caches, as every replica does, and none runs the
// reconcilers or the audit, whose writes would load the API server in every
// variant's rounds (they are measured apart: make measure-audit).
//
// It is built in hack/measure (a module of its own) and run from the
// repository's root: `make measure-serving` runs it against the local cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/hack/measure/internal/servecmd"
	skserver "github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/podproc"

	"github.com/statekeeper/statekeeper/hack/measure/internal/command"
)

type options struct {
	kubeconfig, certDir, logDir, helm, chart string
	statekeepers                             []string // NAME=PATH
	namespace, systemNamespace               string
	firstPort                                int
	rounds, burst, concurrency, mixRate      int
	mixDuration                              time.Duration
	profileDir                               string
	policy                                   bool
}

func main() {
	if len(os.Args) == 7 && os.Args[1] == serveBaseline {
		port, err := strconv.Atoi(os.Args[3])
		if err == nil {
			err = runBaseline(os.Args[2], port, os.Args[4], os.Args[5], os.Args[6])
		}
		command.Exit("throughapi", err)
	}
	var o options
	fs := flag.NewFlagSet("throughapi", flag.ExitOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", ".local/kubeconfig", "kubeconfig of the cluster")
	fs.StringVar(&o.certDir, "cert-dir", "", "directory with ca.crt, tls.crt and tls.key for 127.0.0.1, served by every server")
	fs.StringVar(&o.logDir, "log-dir", ".local/measure", "where the servers' logs go")
	fs.StringVar(&o.helm, "helm", "helm", "the helm binary (renders the chart's webhook configurations)")
	fs.StringVar(&o.chart, "chart", "charts/statekeeper", "the chart")
	fs.Func("statekeeper", "NAME=PATH of a statekeeper binary to measure (repeat; the first one's patches are the same-patch no-op's)", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("want NAME=PATH")
		}
		o.statekeepers = append(o.statekeepers, s)
		return nil
	})
	fs.StringVar(&o.namespace, "namespace", "statekeeper-throughapi", "namespace of the writes (created, enforce mode, and deleted)")
	fs.StringVar(&o.systemNamespace, "system-namespace", "statekeeper-throughapi-system", "statekeeper's own namespace")
	fs.IntVar(&o.firstPort, "first-port", 19560, "the servers listen from this port on (webhook, metrics and health ports)")
	fs.IntVar(&o.rounds, "rounds", 3, "measured rounds of every variant")
	fs.IntVar(&o.burst, "burst", 1000, "Deployment creates in a round's burst")
	fs.IntVar(&o.concurrency, "concurrency", 20, "writes in flight during the burst")
	fs.IntVar(&o.mixRate, "mix-rate", 40, "writes per second of the steady mix")
	fs.DurationVar(&o.mixDuration, "mix-duration", 20*time.Second, "length of the steady mix")
	fs.StringVar(&o.profileDir, "profile-dir", "", "when set, write a CPU profile of each statekeeper over its last round here")
	fs.BoolVar(&o.policy, "policy", false, "add a variant: the first statekeeper with the chart's admission policy installed")
	_ = fs.Parse(os.Args[1:])
	if o.certDir == "" || len(o.statekeepers) == 0 || o.rounds < 1 || o.burst < 1 || o.concurrency < 1 || o.mixRate < 1 || o.mixDuration < time.Second {
		fmt.Fprintln(os.Stderr, "throughapi: --cert-dir and --statekeeper are required; the counts must be positive")
		fs.Usage()
		os.Exit(2)
	}
	command.Run("throughapi", func(ctx context.Context) error { return run(ctx, o) })
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// variant is what the webhooks point at in a round; server is nil for no
// webhook at all. regs, when set, are the registrations to install instead
// of the chart's webhooks alone.
type variant struct {
	name   string
	server *server
	regs   *registrations
}

func run(ctx context.Context, o options) (err error) {
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", o.kubeconfig, err)
	}
	// The burst is bounded by --concurrency, not by the client.
	rc.QPS, rc.Burst = 5000, 10000
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	for _, dir := range []string{o.logDir, o.profileDir} {
		if err := os.MkdirAll(dir, 0o755); dir != "" && err != nil {
			return err
		}
	}
	regs, err := render(o.helm, o.chart, o.certDir, false)
	if err != nil {
		return err
	}
	var withPolicy *registrations
	if o.policy {
		r, err := render(o.helm, o.chart, o.certDir, true)
		if err != nil {
			return err
		}
		withPolicy = &r
	}
	for _, ns := range []string{o.systemNamespace, o.namespace} {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := holdLease(ctx, kube, o.systemNamespace); err != nil {
		return err
	}
	restore, err := saveRegistrations(ctx, kube, regs)
	if err != nil {
		return err
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, regs.unregister(cleanup, kube), restore(cleanup))
		if withPolicy != nil {
			err = errors.Join(err, withPolicy.unregister(cleanup, kube))
		}
		for _, ns := range []string{o.namespace, o.systemNamespace} {
			if e := kube.CoreV1().Namespaces().Delete(cleanup, ns, metav1.DeleteOptions{}); e != nil && !apierrors.IsNotFound(e) {
				err = errors.Join(err, e)
			}
		}
	}()

	port := o.firstPort
	next := func() int { port++; return port - 1 }
	var procs []*podproc.Process
	defer func() {
		for _, p := range procs {
			_ = p.Stop(15 * time.Second)
		}
	}()
	var statekeepers []*server
	for _, nameAndPath := range o.statekeepers {
		name, path, _ := strings.Cut(nameAndPath, "=")
		so := servecmd.Options{
			Binary: path, Kubeconfig: o.kubeconfig, CertDir: o.certDir, Namespace: o.systemNamespace, LeaderElect: true,
			LogFile:        filepath.Join(o.logDir, "throughapi-"+name+".log"),
			WebhookPort:    next(),
			MetricsAddress: fmt.Sprintf("127.0.0.1:%d", next()),
			HealthAddress:  fmt.Sprintf("127.0.0.1:%d", next()),
		}
		pprofAddr := fmt.Sprintf("127.0.0.1:%d", next())
		if o.profileDir != "" {
			so.Args = append(so.Args, "--pprof-bind-address", pprofAddr)
		}
		if err := podproc.FreshLog(so.LogFile); err != nil {
			return err
		}
		logf("starting statekeeper %s (%s, log %s)", name, path, so.LogFile)
		p, err := podproc.Start(so.Command())
		if err != nil {
			return err
		}
		procs = append(procs, p)
		if err := p.WaitReady(ctx, so.ReadyURL(), 2*time.Minute); err != nil {
			return err
		}
		statekeepers = append(statekeepers, &server{
			name: "statekeeper " + name, base: fmt.Sprintf("https://127.0.0.1:%d", so.WebhookPort),
			metricsURL: so.MetricsURL(), pid: p.Pid(), pprofAddr: pprofAddr,
		})
	}
	noop, p, err := startBaseline(ctx, o, modeNoop, next(), next(), "")
	if err != nil {
		return err
	}
	procs = append(procs, p)
	samePatch, p, err := startBaseline(ctx, o, modeSamePatch, next(), next(), statekeepers[0].base)
	if err != nil {
		return err
	}
	procs = append(procs, p)

	l := load{kube: kube, namespace: o.namespace, burst: o.burst, concurrency: o.concurrency, mixRate: o.mixRate, mixDuration: o.mixDuration}
	// The priming round: the same-patch server forwards to the first
	// statekeeper and records its patches; not measured.
	logf("priming round through %s", statekeepers[0].name)
	if _, err := runRound(ctx, l, regs, variant{name: "priming", server: samePatch}, []*server{samePatch}); err != nil {
		return fmt.Errorf("priming round: %w", err)
	}
	recorded, err := replay(ctx, samePatch)
	if err != nil {
		return err
	}
	logf("same-patch no-op replays %s", recorded)

	variants := []variant{{name: "no webhook"}, {name: "no-op webhook", server: noop}, {name: "same-patch no-op", server: samePatch}}
	for _, s := range statekeepers {
		variants = append(variants, variant{name: s.name, server: s})
	}
	if withPolicy != nil {
		variants = append(variants, variant{name: statekeepers[0].name + " + policy", server: statekeepers[0], regs: withPolicy})
	}
	all := append([]*server{noop, samePatch}, statekeepers...)
	results := map[string][]roundResult{}
	for r := range o.rounds {
		// Each round starts at another variant, so that none is always
		// first after the cleanup.
		order := slices.Concat(variants[r%len(variants):], variants[:r%len(variants)])
		for _, v := range order {
			logf("round %d/%d: %s", r+1, o.rounds, v.name)
			var profile func() error
			if o.profileDir != "" && r == o.rounds-1 && v.server != nil && v.server.pprofAddr != "" && v.regs == nil {
				profile = v.server.profile(ctx, filepath.Join(o.profileDir, strings.ReplaceAll(v.name, " ", "-")+".pprof"),
					o.mixDuration+time.Duration(o.burst/o.concurrency)*200*time.Millisecond)
			}
			res, err := runRound(ctx, l, regs, v, all)
			if profile != nil {
				err = errors.Join(err, profile())
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, v.name, err)
			}
			results[v.name] = append(results[v.name], res)
		}
	}
	fmt.Print(report(o, variants, results))
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\nLoad average at the end (1, 5, 15 min): %s\n", strings.Join(strings.Fields(string(load))[:3], ", "))
	}
	return nil
}

// roundResult is what one round of one variant measured.
type roundResult struct {
	burst, mix, rollout *writes
	// admissions and cpu are the server's, over the whole round.
	admissions float64
	cpu        time.Duration
}

// runRound registers v, runs the round's load, unregisters it and cleans
// up. servers are every server, each of which must no longer be called
// before the round starts.
func runRound(ctx context.Context, l load, regs registrations, v variant, servers []*server) (roundResult, error) {
	var res roundResult
	if v.regs != nil {
		regs = *v.regs
	}
	if v.server != nil {
		if err := regs.register(ctx, l.kube, v.server.base); err != nil {
			return res, err
		}
		if err := waitServed(ctx, l.kube, l.namespace, v.server, false); err != nil {
			return res, fmt.Errorf("waiting for the API server to call %s: %w", v.server.name, err)
		}
		if regs.policy != nil {
			if err := waitPolicyActs(ctx, l.kube, l.namespace); err != nil {
				return res, fmt.Errorf("waiting for the admission policy to act: %w", err)
			}
		}
	}
	for _, s := range servers {
		if s != v.server {
			if err := waitServed(ctx, l.kube, l.namespace, s, true); err != nil {
				return res, fmt.Errorf("waiting for the API server to stop calling %s: %w", s.name, err)
			}
		}
	}
	var admissionsBefore float64
	var cpuBefore time.Duration
	if v.server != nil {
		var err error
		if admissionsBefore, err = v.server.admissions(ctx); err != nil {
			return res, err
		}
		if cpuBefore, err = v.server.cpu(); err != nil {
			return res, err
		}
	}
	res.burst = l.runBurst(ctx)
	owner, err := l.kube.AppsV1().StatefulSets(l.namespace).Create(ctx, statefulSet(), metav1.CreateOptions{})
	if err != nil {
		return res, err
	}
	res.mix = l.runMix(ctx, owner)
	res.rollout = l.runRollout(ctx)
	if v.server != nil {
		admissions, err := v.server.admissions(ctx)
		if err != nil {
			return res, err
		}
		cpu, err := v.server.cpu()
		if err != nil {
			return res, err
		}
		res.admissions, res.cpu = admissions-admissionsBefore, cpu-cpuBefore
	}
	if err := regs.unregister(ctx, l.kube); err != nil {
		return res, err
	}
	return res, l.clean(ctx)
}

// holdLease takes statekeeper's leader-election Lease for longer than the
// run lasts, so that no statekeeper of the run leads.
func holdLease(ctx context.Context, kube kubernetes.Interface, namespace string) error {
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: skserver.LeaderElectionID, Namespace: namespace},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("throughapi"),
			LeaseDurationSeconds: ptr.To[int32](24 * 3600),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	_, err := kube.CoordinationV1().Leases(namespace).Create(ctx, lease, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	stored, err := kube.CoordinationV1().Leases(namespace).Get(ctx, lease.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	stored.Spec = lease.Spec
	_, err = kube.CoordinationV1().Leases(namespace).Update(ctx, stored, metav1.UpdateOptions{})
	return err
}
