// Command cachesize measures what statekeeper's informer caches cost: it
// runs `statekeeper serve` (leader-elected, so the reconciler runs) against
// a cluster, reads the process's memory from its /metrics with an empty
// namespace, again after creating N unmanaged Deployments, and again after
// creating N stateful-multi StatefulSets and waiting until the reconciler has
// made their N headless Services. It prints the three readings, the cost per
// object, and what the objects weigh as the API server serves them (with the
// managedFields the cache transform drops counted apart). Everything it
// creates lives in two namespaces that it deletes at the end.
//
// It is built in hack/measure (a module of its own) and run from the
// repository's root, which its default paths are relative to:
//
//	(cd hack/measure && go build -o ../../bin/measure-cachesize ./cachesize)
//	bin/measure-cachesize --kubeconfig .local/kubeconfig --statekeeper bin/statekeeper --cert-dir DIR
//
// `make measure-cache` runs it against the local cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/statekeeper/statekeeper/hack/measure/internal/servecmd"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/reconciler"
)

type options struct {
	server       servecmd.Options
	statefulSets int
	deployments  int
	pods         int
	// clusterShaped gives each Deployment an image of its own and a
	// Service, as a cluster's applications have.
	clusterShaped   bool
	parallel        int
	namespace       string
	gcs             int
	goMemLimit      string
	profileDir      string
	settle, timeout time.Duration
	observeTimeout  time.Duration
}

// image is the image of Deployment number i.
func (o options) image(i int) string {
	if o.clusterShaped {
		return fmt.Sprintf("registry.example/%s:1.%d.0", deploymentName(i), i%7)
	}
	return "registry.example/web:3.1.4"
}

func main() {
	var o options
	// A flag set of its own: controller-runtime, imported for statekeeper's
	// constants, registers --kubeconfig on the global one.
	fs := flag.NewFlagSet("cachesize", flag.ExitOnError)
	fs.StringVar(&o.server.Kubeconfig, "kubeconfig", ".local/kubeconfig", "kubeconfig of the cluster to measure in")
	fs.StringVar(&o.server.Binary, "statekeeper", "bin/statekeeper", "the statekeeper binary")
	fs.StringVar(&o.server.CertDir, "cert-dir", "", "directory with tls.crt and tls.key for the (unregistered) webhook server")
	fs.StringVar(&o.server.LogFile, "log", ".local/measure/statekeeper.log", "where statekeeper's log goes")
	fs.StringVar(&o.server.Namespace, "system-namespace", "statekeeper-measure", "statekeeper's own namespace (its Lease); created and deleted")
	fs.IntVar(&o.server.WebhookPort, "webhook-port", 19443, "port of the webhook server")
	fs.StringVar(&o.server.MetricsAddress, "metrics-address", "127.0.0.1:18080", "where statekeeper serves /metrics")
	fs.StringVar(&o.server.HealthAddress, "health-address", "127.0.0.1:18081", "where statekeeper serves /readyz")
	fs.StringVar(&o.namespace, "namespace", "statekeeper-measure-load", "namespace of the created workloads; created and deleted")
	fs.IntVar(&o.statefulSets, "statefulsets", 1000, "stateful-multi StatefulSets to create (replicas 0; the reconciler makes a Service for each)")
	fs.IntVar(&o.deployments, "deployments", 1000, "unmanaged Deployments to create")
	fs.BoolVar(&o.clusterShaped, "cluster-shaped", false, "give each Deployment an image of its own and a Service, as a cluster's applications have (default: one image, no Service)")
	fs.IntVar(&o.pods, "pods", 0, "pods of the Deployments to create (Pending, never scheduled)")
	fs.StringVar(&o.goMemLimit, "gomemlimit", "", "GOMEMLIMIT of statekeeper (empty: none, as without a chart)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "directory for a heap profile and /proc smaps_rollup of statekeeper at each reading (empty: none)")
	fs.IntVar(&o.parallel, "parallel", 32, "creations in flight at once")
	fs.IntVar(&o.gcs, "gcs", 5, "garbage collections sampled per reading (the median is reported)")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "pause before each reading, for watch events and controllers to finish")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit on each wait (controllers, the reconciler, a GC)")
	fs.DurationVar(&o.observeTimeout, "observe-timeout", 3*time.Minute, "limit on waiting for the deployment controller to write the Deployments' status")
	_ = fs.Parse(os.Args[1:])
	if o.server.CertDir == "" || o.statefulSets < 0 || o.deployments < 1 || o.pods < 0 || o.parallel < 1 || o.gcs < 1 {
		fmt.Fprintln(os.Stderr, "cachesize: --cert-dir is required; --deployments, --parallel and --gcs must be positive, --statefulsets and --pods not negative")
		fs.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cachesize:", err)
		os.Exit(1)
	}
}

// result is one measurement, for the report.
type result struct {
	options          options
	clusterBefore    clusterCounts
	baseline         memory
	statefulSetsRead memory
	deploymentsRead  memory
	podsRead         memory
	sizes            []kindSize
	events           kindSize
	// lastApplied is what client-side kubectl apply would add to each
	// Deployment and StatefulSet (see lastAppliedBytes).
	lastApplied struct{ Deployment, StatefulSet int }
	timings     []timing
}

type timing struct {
	what string
	took time.Duration
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	rc, err := clientcmd.BuildConfigFromFlags("", o.server.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", o.server.Kubeconfig, err)
	}
	// The API server is local: let the creations run as fast as it takes them.
	rc.QPS, rc.Burst = 1000, 2000
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.server.LogFile), 0o755); err != nil {
		return err
	}

	// A run stopped half-way leaves its namespaces to a later run's cleanup.
	for _, ns := range []string{o.server.Namespace, o.namespace} {
		if err := deleteNamespace(ctx, kube, ns, o.timeout); err != nil {
			return fmt.Errorf("removing a namespace of an earlier run: %w", err)
		}
		if err := createNamespace(ctx, kube, ns); err != nil {
			return err
		}
	}
	r := result{options: o}
	if r.clusterBefore, err = countCluster(ctx, rc); err != nil {
		return err
	}

	if o.goMemLimit != "" {
		o.server.Env = append(o.server.Env, "GOMEMLIMIT="+o.goMemLimit)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		o.server.Args = append(o.server.Args, "--pprof-bind-address", pprofAddress)
	}
	log("starting statekeeper (log %s)", o.server.LogFile)
	proc, err := startServer(o.server)
	if err != nil {
		return err
	}
	defer func() {
		// The caller's context may be cancelled (Ctrl-C); cleaning up must not be.
		cleanup, cancel := context.WithTimeout(context.Background(), o.timeout)
		defer cancel()
		if err := proc.Stop(20 * time.Second); err != nil {
			log("%v", err) // the readings stand
		}
		log("deleting namespaces %s and %s", o.namespace, o.server.Namespace)
		errs := []error{err,
			deleteNamespace(cleanup, kube, o.namespace, o.timeout),
			deleteNamespace(cleanup, kube, o.server.Namespace, o.timeout)}
		err = errors.Join(errs...)
	}()
	if err := proc.waitLeading(ctx, time.Minute); err != nil {
		return err
	}

	read := func(what string) (memory, error) {
		log("settling %s, then reading memory after %d GCs (%s)", o.settle, o.gcs, what)
		if err := sleep(ctx, o.settle); err != nil {
			return memory{}, err
		}
		if err := proc.Exited(); err != nil {
			return memory{}, err
		}
		idle := time.Now()
		if err := proc.waitIdle(ctx, o.timeout); err != nil {
			return memory{}, err
		}
		log("controllers idle after %s", time.Since(idle).Round(time.Second))
		samples, err := proc.metrics.afterGCs(ctx, o.gcs, o.timeout)
		if err != nil {
			return memory{}, fmt.Errorf("reading memory (%s): %w", what, err)
		}
		m := medianMemory(samples)
		// Said at once: a long run stopped later still leaves its readings.
		log("%s: live heap %s, heap in use %s, RSS %s", what, mib(m.LiveHeap), mib(m.HeapInuse), mib(m.RSS))
		if o.profileDir != "" {
			if err := saveProfile(ctx, o.profileDir, what, proc.Pid()); err != nil {
				return memory{}, err
			}
		}
		return m, nil
	}
	timed := func(what string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		r.timings = append(r.timings, timing{what, time.Since(start)})
		log("%s: %s", what, time.Since(start).Round(100*time.Millisecond))
		return nil
	}

	if r.baseline, err = read("baseline"); err != nil {
		return err
	}

	statefulSets := kube.AppsV1().StatefulSets(o.namespace)
	err = timed(fmt.Sprintf("create %d StatefulSets", o.statefulSets), func() error {
		return createAll(ctx, o.statefulSets, o.parallel, func(ctx context.Context, i int) error {
			_, err := statefulSets.Create(ctx, statefulSet(o.namespace, fmt.Sprintf("db-%05d", i)), metav1.CreateOptions{})
			return err
		})
	})
	if err != nil {
		return err
	}
	managed := metav1.ListOptions{LabelSelector: labels.Set{policy.LabelManagedBy: policy.ManagerName}.String()}
	services := kube.CoreV1().Services(o.namespace)
	// The Services exist and this process's reconciler has handled every
	// StatefulSet (another statekeeper running against the cluster could
	// have made the Services too).
	err = timed(fmt.Sprintf("reconciler makes %d Services", o.statefulSets), func() error {
		return waitFor(ctx, o.timeout, proc, func(ctx context.Context) (bool, error) {
			list, err := services.List(ctx, managed)
			if err != nil || len(list.Items) < o.statefulSets {
				return false, err
			}
			s, err := proc.metrics.scrape(ctx)
			if err != nil {
				return false, err
			}
			reconciles, _ := s.value(metricReconciles, map[string]string{"controller": reconciler.ControllerName})
			return reconciles >= float64(o.statefulSets), nil
		})
	})
	if err != nil {
		return err
	}
	err = timed("statefulset controller observes them", func() error {
		return waitFor(ctx, o.timeout, proc, func(ctx context.Context) (bool, error) {
			list, err := statefulSets.List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return countTrue(list.Items, func(s appsv1.StatefulSet) bool {
				return s.Status.ObservedGeneration == s.Generation
			}) == o.statefulSets, nil
		})
	})
	if err != nil {
		return err
	}
	if r.statefulSetsRead, err = read(fmt.Sprintf("%d StatefulSets and Services", o.statefulSets)); err != nil {
		return err
	}

	deployments := kube.AppsV1().Deployments(o.namespace)
	err = timed(fmt.Sprintf("create %d Deployments", o.deployments), func() error {
		return createAll(ctx, o.deployments, o.parallel, func(ctx context.Context, i int) error {
			name := deploymentName(i)
			if _, err := deployments.Create(ctx, deployment(o.namespace, name, o.image(i)), metav1.CreateOptions{}); err != nil || !o.clusterShaped {
				return err
			}
			_, err := kube.CoreV1().Services(o.namespace).Create(ctx, service(o.namespace, name), metav1.CreateOptions{})
			return err
		})
	})
	if err != nil {
		return err
	}
	// The deployment controller writes each Deployment's status; the cache
	// holds the last version, of whose status it keeps only replicas (0
	// here). With thousands of Deployments the controller takes longer than
	// a run may (on two shared cores, 877 of 9,000 in nine minutes): the
	// wait is bounded by --observe-timeout and says how far it got.
	err = timed("deployment controller observes them", func() error {
		observed := 0
		err := waitFor(ctx, o.observeTimeout, proc, func(ctx context.Context) (bool, error) {
			list, err := deployments.List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			observed = countTrue(list.Items, func(d appsv1.Deployment) bool {
				return d.Status.ObservedGeneration == d.Generation
			})
			return observed == o.deployments, nil
		})
		if wait.Interrupted(err) && ctx.Err() == nil {
			log("the deployment controller observed %d of %d Deployments in %s; going on", observed, o.deployments, o.observeTimeout)
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if r.deploymentsRead, err = read(fmt.Sprintf("%d Deployments", o.deployments)); err != nil {
		return err
	}

	if o.pods > 0 {
		if err := createPods(ctx, kube, o, timed); err != nil {
			return err
		}
		if r.podsRead, err = read(fmt.Sprintf("%d pods", o.pods)); err != nil {
			return err
		}
	}

	if r.sizes, r.events, err = measureKinds(ctx, kube, o.namespace, o.pods > 0); err != nil {
		return err
	}
	if r.lastApplied.Deployment, err = lastAppliedBytes(deployment(o.namespace, deploymentName(0), o.image(0)), appsv1.SchemeGroupVersion.WithKind("Deployment")); err != nil {
		return err
	}
	if r.lastApplied.StatefulSet, err = lastAppliedBytes(statefulSet(o.namespace, "db-00000"), appsv1.SchemeGroupVersion.WithKind("StatefulSet")); err != nil {
		return err
	}
	report(out, r)
	return nil
}

// clusterCounts are the objects of the cached kinds in the whole cluster
// before the load: the baseline's caches hold them.
type clusterCounts struct {
	Namespaces, Deployments, StatefulSets, Pods, Claims, ManagedServices int
}

func countCluster(ctx context.Context, rc *rest.Config) (clusterCounts, error) {
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		return clusterCounts{}, err
	}
	var c clusterCounts
	managed := labels.Set{policy.LabelManagedBy: policy.ManagerName}.String()
	for _, r := range []struct {
		resource schema.GroupVersionResource
		selector string
		count    *int
	}{
		{corev1.SchemeGroupVersion.WithResource("namespaces"), "", &c.Namespaces},
		{appsv1.SchemeGroupVersion.WithResource("deployments"), "", &c.Deployments},
		{appsv1.SchemeGroupVersion.WithResource("statefulsets"), "", &c.StatefulSets},
		{corev1.SchemeGroupVersion.WithResource("pods"), "", &c.Pods},
		{corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims"), "", &c.Claims},
		{corev1.SchemeGroupVersion.WithResource("services"), managed, &c.ManagedServices},
	} {
		list, err := meta.Resource(r.resource).List(ctx, metav1.ListOptions{LabelSelector: r.selector})
		if err != nil {
			return clusterCounts{}, fmt.Errorf("counting %s: %w", r.resource.Resource, err)
		}
		*r.count = len(list.Items)
	}
	return c, nil
}

func countTrue[T any](items []T, pred func(T) bool) int {
	n := 0
	for _, item := range items {
		if pred(item) {
			n++
		}
	}
	return n
}

func createNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// deleteNamespace deletes the namespace and waits until it is gone.
func deleteNamespace(ctx context.Context, kube kubernetes.Interface, name string, timeout time.Duration) error {
	err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("waiting for namespace %s to be deleted: %w", name, err)
	}
	return nil
}

// waitFor polls done every second until it holds, failing early when
// statekeeper exits.
func waitFor(ctx context.Context, timeout time.Duration, proc *process, done func(context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		if err := proc.Exited(); err != nil {
			return false, err
		}
		return done(ctx)
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format(time.TimeOnly)}, args...)...)
}
