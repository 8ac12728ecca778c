//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// outcome is how one write went, as its client saw it.
type outcome int

const (
	// admitted: allowed, as it should have been (and mutated, where a
	// mutation is due).
	admitted outcome = iota
	// denied: refused by the rule that should refuse it.
	denied
	// failed: refused, but not by a rule — the webhook could not be called
	// or did not answer. These are what the suite counts.
	failed
	// wrong: statekeeper decided, and decided wrong.
	wrong
	// unavailable: the API server (or etcd behind it) did not take the
	// write; statekeeper was never asked.
	unavailable
)

var outcomeNames = map[outcome]string{admitted: "admitted", denied: "denied", failed: "failed", wrong: "wrong", unavailable: "unavailable"}

// result is one write of the load.
type result struct {
	op         string
	start, end time.Time
	outcome    outcome
	err        error
}

// Fixtures the load writes to, in its namespace: "steady-i" take annotation
// updates, "scaled-i" (stateless-multi) /scale updates between 2 and 3,
// "single" (stateless-single) refused /scale updates to 3, "quorum" refused
// replica updates to 2, "unlabelled" (unmanaged) dry-run /scale updates to 3. Their pods never schedule (noNode), so scaling
// costs the cluster nothing but Pending pods.
const (
	steadyName = "steady"
	scaledName = "scaled"
	singleName = "single"
	quorumName = "quorum"
)

// spread is how many "steady" and "scaled" Deployments take the admitted
// updates in turn. The API server retries a patch that conflicts with
// another, calling the webhooks again each time: at 50 writes/s on one
// object the retries of a loaded machine pile up until writes time out in
// the API server, whatever the webhooks do. (Denied updates store nothing
// and conflict with nothing.)
const spread = 8

// spreadName is the copy of a spread fixture that write n updates. An op's
// writes are len(ops) = 7 apart, prime to spread, so they take the copies in
// turn.
func spreadName(name string, n int64) string {
	return fmt.Sprintf("%s-%d", name, n%spread)
}

// noNode is a node selector no node matches.
var noNode = map[string]string{"faults.statekeeper.io/no-such-node": "true"}

func fixtures() []client.Object {
	single := workloads.Deployment(singleName, policy.StatelessSingle, 1)
	quorum := workloads.Deployment(quorumName, policy.StatelessMulti, 1)
	quorum.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
	deployments := []*appsv1.Deployment{single, quorum, workloads.Deployment(unlabelledName, "", 1)}
	for i := range spread {
		deployments = append(deployments,
			workloads.Deployment(fmt.Sprintf("%s-%d", steadyName, i), policy.StatelessMulti, 0),
			workloads.Deployment(fmt.Sprintf("%s-%d", scaledName, i), policy.StatelessMulti, 2))
	}
	var objs []client.Object
	for _, d := range deployments {
		d.Spec.Template.Spec.NodeSelector = noNode
		objs = append(objs, d)
	}
	return objs
}

// op is one kind of write: do performs it, wantDenied is the rule that
// must refuse it ("" when it must be admitted).
type op struct {
	name       string
	wantDenied policy.Rule
	do         func(ctx context.Context, c client.Client, ns string, n int64) error
}

var errNotMutated = errors.New("admitted without statekeeper's mutation")

// ops are the writes of the steady load, in turn: creates, updates and
// /scale updates of managed workloads, three of the seven denied.
var ops = []op{
	{name: "create deployment", do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		d := workloads.Deployment(fmt.Sprintf("d-%d", n), policy.StatelessMulti, 0)
		d.Namespace = ns
		return c.Create(ctx, d)
	}},
	// A server-side dry run goes through both webhooks like a create, but
	// stores nothing: a stored StatefulSet per write would queue a headless
	// Service per write for the reconciler, faster than a loaded machine
	// makes them.
	{name: "create statefulset (dry run)", do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		s := workloads.StatefulSet(fmt.Sprintf("s-%d", n), policy.StatefulMulti, 0)
		s.Namespace = ns
		if err := c.Create(ctx, s, client.DryRunAll); err != nil {
			return err
		}
		if s.Spec.ServiceName == "" {
			return errNotMutated
		}
		return nil
	}},
	{name: "create single with 2 replicas", wantDenied: policy.RuleSingleInstance, do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		d := workloads.Deployment(fmt.Sprintf("x-%d", n), policy.StatelessSingle, 2)
		d.Namespace = ns
		return c.Create(ctx, d)
	}},
	{name: "update annotation", do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"faults.statekeeper.io/write":"%d"}}}`, n)
		return c.Patch(ctx, named(ns, spreadName(steadyName, n)), client.RawPatch(types.MergePatchType, []byte(patch)))
	}},
	{name: "update quorum to 2", wantDenied: policy.RuleQuorum, do: func(ctx context.Context, c client.Client, ns string, _ int64) error {
		return c.Patch(ctx, named(ns, quorumName), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":2}}`)))
	}},
	{name: "scale multi", do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, 2+(n/spread)%2) // each copy in turn between 2 and 3
		return c.SubResource("scale").Patch(ctx, named(ns, spreadName(scaledName, n)), client.RawPatch(types.MergePatchType, []byte(patch)))
	}},
	{name: "scale single to 3", wantDenied: policy.RuleSingleInstance, do: func(ctx context.Context, c client.Client, ns string, _ int64) error {
		return c.SubResource("scale").Patch(ctx, named(ns, singleName), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3}}`)))
	}},
}

// unlabelledName is the unlabelled Deployment unmanagedOps scale.
const unlabelledName = "unlabelled"

// unmanagedOps are writes of a workload statekeeper does not manage, in
// turn: an unlabelled create, which only the kind-switch entry sees (it
// fails open), and a /scale of an unlabelled Deployment to 3, which the
// scaling entry sees (it fails closed: a Scale has no labels). Both are
// server-side dry runs: they go through the webhooks and store nothing.
var unmanagedOps = []op{
	{name: "create unlabelled deployment (dry run)", do: func(ctx context.Context, c client.Client, ns string, n int64) error {
		d := workloads.Deployment(fmt.Sprintf("u-%d", n), "", 0)
		d.Namespace = ns
		return c.Create(ctx, d, client.DryRunAll)
	}},
	{name: "scale unlabelled to 3 (dry run)", do: func(ctx context.Context, c client.Client, ns string, _ int64) error {
		return c.SubResource("scale").Patch(ctx, named(ns, unlabelledName), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3}}`)), client.DryRunAll)
	}},
}

func named(ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	d.Namespace, d.Name = ns, name
	return d
}

// classify turns a write's error into its outcome.
func classify(err error, wantDenied policy.Rule) outcome {
	switch {
	case err == nil:
		if wantDenied != "" {
			return wrong
		}
		return admitted
	case errors.Is(err, errNotMutated):
		return wrong
	case apierrors.IsInvalid(err) && deniedBy(err) != "":
		if deniedBy(err) == wantDenied {
			return denied
		}
		return wrong
	case strings.Contains(err.Error(), "failed calling webhook"):
		return failed
	case apiServerUnavailable(err):
		return unavailable
	default:
		return failed
	}
}

// deniedBy is the rule a statekeeper denial names.
func deniedBy(err error) policy.Rule {
	for _, r := range []policy.Rule{policy.RuleSingleInstance, policy.RuleQuorum, policy.RuleKindMismatch,
		policy.RuleKindSwitch, policy.RuleTypeChange, policy.RuleHeadlessConflict} {
		if strings.Contains(err.Error(), "["+string(r)+"]") {
			return r
		}
	}
	return ""
}

// apiServerUnavailable reports errors of the API server or etcd, not of
// admission: no connection, a connection lost, 503/504/429, etcd's own
// errors, and the admission plugin's "not yet ready" while a restarted API
// server loads its webhook configurations.
func apiServerUnavailable(err error) bool {
	var netErr net.Error
	msg := err.Error()
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "EOF") ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || strings.Contains(msg, "etcdserver") ||
		strings.Contains(msg, "not yet ready to handle request")
}

// load writes through the API server at a fixed rate until stopped, and
// keeps every result.
type load struct {
	c         client.Client
	namespace string
	rate      int
	ops       []op

	mu      sync.Mutex
	results []result
	// pending are the start times of the writes in flight.
	pending  map[int64]time.Time
	inFlight sync.WaitGroup
	stop     context.CancelFunc
	done     chan struct{}
}

// startLoad starts writing ops in turn, rate a second; each write gets
// requestTimeout.
func startLoad(c client.Client, namespace string, rate int, ops []op) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{c: c, namespace: namespace, rate: rate, ops: ops, stop: cancel, done: make(chan struct{}), pending: map[int64]time.Time{}}
	go l.run(ctx)
	return l
}

// requestTimeout bounds one write: longer than any webhook timeout the
// chart allows (30s), so a write that hangs on statekeeper shows as failed.
const requestTimeout = 40 * time.Second

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	ticker := time.NewTicker(time.Second / time.Duration(l.rate))
	defer ticker.Stop()
	// Bounded: a stalled API server must not pile up goroutines.
	slots := make(chan struct{}, 4*l.rate)
	var n int64
	for {
		select {
		case <-ctx.Done():
			l.inFlight.Wait()
			return
		case <-ticker.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // the writes in flight hold every slot: skip this tick
		}
		n++
		o := l.ops[n%int64(len(l.ops))]
		l.inFlight.Add(1)
		go func(n int64) {
			defer func() { <-slots; l.inFlight.Done() }()
			reqCtx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			start := time.Now()
			l.mu.Lock()
			l.pending[n] = start
			l.mu.Unlock()
			err := o.do(reqCtx, l.c, l.namespace, n)
			r := result{op: o.name, start: start, end: time.Now(), outcome: classify(err, o.wantDenied), err: err}
			l.mu.Lock()
			l.results = append(l.results, r)
			delete(l.pending, n)
			l.mu.Unlock()
		}(n)
	}
}

// finish stops the load and waits for the writes in flight.
func (l *load) finish() {
	l.stop()
	<-l.done
}

// settle waits until every write that started before t has ended.
func (l *load) settle(t time.Time) {
	for {
		l.mu.Lock()
		waiting := false
		for _, started := range l.pending {
			waiting = waiting || started.Before(t)
		}
		l.mu.Unlock()
		if !waiting {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// between returns the results of the writes that started in [from, to).
func (l *load) between(from, to time.Time) []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []result
	for _, r := range l.results {
		if !r.start.Before(from) && r.start.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// counts are a window's results by outcome.
type counts struct {
	sent                                         int
	admitted, denied, failed, wrong, unavailable int
	// firstFailures are a few failed or wrong writes, firstUnavailable a
	// few the API server did not take, for the report.
	firstFailures, firstUnavailable []string
	// failedBy counts the failed writes by cause, unavailableBy the
	// writes the API server did not take by write and cause.
	failedBy, unavailableBy map[string]int
}

// failureCause is the innermost part of a failed write's error: what the
// API server met when it called the webhook ("connection refused", "service
// \"statekeeper-webhook\" not found", "context deadline exceeded", ...).
func failureCause(err error) string {
	if err == nil {
		return "<nil>"
	}
	msg := err.Error()
	return msg[strings.LastIndex(msg, ": ")+len(": "):]
}

func count(results []result) counts {
	var c counts
	for _, r := range results {
		c.sent++
		switch r.outcome {
		case admitted:
			c.admitted++
		case denied:
			c.denied++
		case failed:
			c.failed++
			if c.failedBy == nil {
				c.failedBy = map[string]int{}
			}
			c.failedBy[failureCause(r.err)]++
		case wrong:
			c.wrong++
		case unavailable:
			c.unavailable++
			if c.unavailableBy == nil {
				c.unavailableBy = map[string]int{}
			}
			c.unavailableBy[r.op+": "+failureCause(r.err)]++
		}
		line := fmt.Sprintf("%s %s at %s: %v", outcomeNames[r.outcome], r.op, r.start.Format("15:04:05.000"), r.err)
		switch {
		case (r.outcome == failed || r.outcome == wrong) && len(c.firstFailures) < 5:
			c.firstFailures = append(c.firstFailures, line)
		case r.outcome == unavailable && len(c.firstUnavailable) < 2:
			c.firstUnavailable = append(c.firstUnavailable, line)
		}
	}
	return c
}
