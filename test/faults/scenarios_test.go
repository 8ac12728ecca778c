//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// rollingRestart is `kubectl rollout restart`: a new pod-template
// annotation, so every replica is replaced, one at a time.
func rollingRestart(t *testing.T, st *suite) {
	ctx := t.Context()
	c, recovery, _ := st.window(t, func() time.Duration {
		start := time.Now()
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, start.Format(time.RFC3339))
		require.NoError(t, st.c.Patch(ctx, named(releaseNamespace, st.fleet.deployment), client.RawPatch(types.StrategicMergePatchType, []byte(patch))))
		require.NoError(t, st.fleet.rollout(ctx))
		return time.Since(start)
	})
	st.report.add(row{scenario: "rolling restart", counts: c, recovery: recovery, note: "all replicas replaced"})
	requireNoFailures(t, c)
	st.requireLeaseReleased(t)
}

// requireLeaseReleased: a leader stopped gracefully hands its Lease back.
func (st *suite) requireLeaseReleased(t *testing.T) {
	t.Helper()
	st.fleet.mu.Lock()
	kept := st.fleet.leaseKeptAfterExit
	st.fleet.mu.Unlock()
	require.Zero(t, kept, "leaders whose Lease still named them after they stopped")
}

// helmUpgrade changes a value that is a flag of the pods, so they roll.
func helmUpgrade(t *testing.T, st *suite) {
	ctx := t.Context()
	c, recovery, _ := st.window(t, func() time.Duration {
		start := time.Now()
		_, err := helm(ctx, st.s, "upgrade", releaseName, chartDir, "--namespace", releaseNamespace, "--reuse-values",
			"--set", "config.defaultStorageSize=2Gi")
		require.NoError(t, err)
		require.NoError(t, st.fleet.rollout(ctx))
		return time.Since(start)
	})
	st.report.add(row{scenario: "helm upgrade", counts: c, recovery: recovery, note: "--set config.defaultStorageSize=2Gi"})
	requireNoFailures(t, c)
	st.requireLeaseReleased(t)

	// The new value decides now: an injected claim is 2Gi.
	sts := workloads.StatefulSet("after-upgrade", policy.StatefulMulti, 0)
	sts.Namespace = st.ns
	require.NoError(t, st.c.Create(ctx, sts, client.DryRunAll))
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	require.Equal(t, resource.MustParse("2Gi"), sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage])
}

// certificateReissued writes a new serving certificate into the Secret;
// every replica must serve it, without a restart.
func certificateReissued(t *testing.T, st *suite) {
	ctx := t.Context()
	pids := st.fleet.pids()
	c, recovery, _ := st.window(t, func() time.Duration {
		start := time.Now()
		issueCertificate(t, st, st.fleet.service)
		require.NoError(t, applySecret(ctx, st, st.fleet.secret))
		require.NoError(t, st.fleet.remountAll(ctx))
		var secret corev1.Secret
		require.NoError(t, st.c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: st.fleet.secret}, &secret))
		want := pemLeaf(t, secret.Data[corev1.TLSCertKey])
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			served := st.fleet.servedCertificates(st.fleet.targetPort)
			if len(served) != len(pids) {
				return false, nil
			}
			for _, raw := range served {
				if !bytes.Equal(raw, want) {
					return false, nil
				}
			}
			return true, nil
		})
		require.NoError(t, err, "every replica serving the new certificate")
		return time.Since(start)
	})
	st.report.add(row{scenario: "certificate re-issued", counts: c, recovery: recovery, note: "until every replica serves it"})
	requireNoFailures(t, c)
	require.Equal(t, pids, st.fleet.pids(), "no replica restarted")
}

// notLeader is a replica that does not hold the Lease.
func (st *suite) notLeader(t *testing.T) *replica {
	t.Helper()
	leader := st.fleet.leaseHolder(t.Context())
	for pod := range st.fleet.pids() {
		if pod != leader {
			return st.fleet.byPod(pod)
		}
	}
	t.Fatal("no replica that is not the leader")
	return nil
}

// replicaKilled SIGKILLs a replica that is not the leader; its restart
// brings it back on the same address.
func replicaKilled(t *testing.T, st *suite) {
	victim := st.notLeader(t)
	c, recovery, notReady := st.killWindow(t, victim, false, nil)
	st.report.add(row{scenario: "replica SIGKILLed", counts: c.total, recovery: recovery,
		note: fmt.Sprintf("failed in flight %d, after its endpoint went %d", c.inFlight, c.after)})
	require.Zero(t, c.after, "failures after the endpoint was written not ready at %s", notReady.Format("15:04:05.000"))
	require.Zero(t, c.total.wrong, "wrong decisions: %v", c.total.firstFailures)
}

// killCounts splits a kill's failures at the moment its endpoint went.
type killCounts struct {
	total      counts
	inFlight   int // failed writes that started before the endpoint went (plus the informer's second)
	after      int
	notReadyAt time.Time
}

// killWindow SIGKILLs r under load, optionally holding it down while
// during runs, waits until it is ready again, and splits the failures.
func (st *suite) killWindow(t *testing.T, r *replica, hold bool, during func()) (killCounts, time.Duration, time.Time) {
	t.Helper()
	ctx := t.Context()
	var notReadyAt time.Time
	c, recovery, from := st.window(t, func() time.Duration {
		start := time.Now()
		st.fleet.mu.Lock()
		starts := r.starts
		st.fleet.mu.Unlock()
		st.fleet.kill(r, hold)
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			st.fleet.mu.Lock()
			defer st.fleet.mu.Unlock()
			notReadyAt = r.notReadyAt
			return !notReadyAt.IsZero() && notReadyAt.After(start), nil
		}), "the killed replica's endpoint written not ready")
		if during != nil {
			during()
		}
		require.NoError(t, st.fleet.release(r))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			st.fleet.mu.Lock()
			defer st.fleet.mu.Unlock()
			return r.starts > starts && r.ready && st.fleet.published == st.fleet.generation, nil
		}), "the killed replica restarted and ready")
		return time.Since(start)
	})
	_ = from
	kc := killCounts{total: c, notReadyAt: notReadyAt}
	cutoff := notReadyAt.Add(time.Second)
	for _, res := range st.load.between(from, time.Now()) {
		if res.outcome != failed {
			continue
		}
		if res.start.Before(cutoff) {
			kc.inFlight++
		} else {
			kc.after++
		}
	}
	return kc, recovery, notReadyAt
}

// unmanagedRate is the writes per second of unmanagedOps beside the
// steady load while a replica is stalled.
const unmanagedRate = 10

// stallCounts are the writes of one load while a replica was stalled,
// their failures split at the moment its endpoint was written not ready and
// at the moment its process was killed (each plus the second the API
// server's informer or the kernel's reset may take). Between the two, the
// API server dials it no more, but a connection it opened before may still
// take a write, which waits.
type stallCounts struct {
	total                            counts
	failedIn, failedOut, failedAfter int // failed before the endpoint went, after, after the kill
	// waited are the writes that took longer than a second, reported
	// only: on a loaded machine some take that long anyway.
	waited int
}

func splitStall(results []result, out, killed time.Time) stallCounts {
	sc := stallCounts{total: count(results)}
	for _, r := range results {
		if r.end.Sub(r.start) > time.Second {
			sc.waited++
		}
		switch {
		case r.outcome != failed:
		case r.start.Before(out.Add(time.Second)):
			sc.failedIn++
		case r.start.Before(killed.Add(time.Second)):
			sc.failedOut++
		default:
			sc.failedAfter++
		}
	}
	return sc
}

func (sc stallCounts) note() string {
	return fmt.Sprintf("failed %d before its endpoint went, %d after, %d after it was killed; %d waited over 1s",
		sc.failedIn, sc.failedOut, sc.failedAfter, sc.waited)
}

// replicaStalled SIGSTOPs a replica that is not the leader: a process that
// hangs rather than dies (a deadlock, CPU throttling, a long pause). The
// kernel still accepts connections for it and nothing answers them, so
// every write the API server sends it waits for the webhook's whole
// timeout, then fails where the entry fails closed or is admitted unchecked
// where it fails open. Its readiness probe must take it out of the
// endpoints first, its liveness probe then restart it. Beside the steady
// load of managed writes, unmanaged ones (unmanagedOps) show the cost to
// workloads statekeeper does not manage.
func replicaStalled(t *testing.T, st *suite) {
	ctx := t.Context()
	victim := st.notLeader(t)
	others := st.fleet.pids()
	delete(others, victim.pod)
	t.Cleanup(st.fleet.resumeStalled)
	unmanaged := startLoad(st.c, st.ns, unmanagedRate, unmanagedOps)
	defer unmanaged.finish()

	var stalledAt, failedAt, outAt, killedAt, exitedAt time.Time
	st.fleet.mu.Lock()
	starts, restarts := victim.starts, victim.livenessRestarts
	st.fleet.mu.Unlock()
	callsBefore, err := apiServerWebhookCalls(ctx, st.s.kubeconfig)
	require.NoError(t, err)
	_, recovery, _ := st.window(t, func() time.Duration {
		stalledAt = time.Now()
		require.NoError(t, st.fleet.stall(victim))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			st.fleet.mu.Lock()
			defer st.fleet.mu.Unlock()
			outAt = victim.notReadyAt
			return outAt.After(stalledAt), nil
		}), "the stalled replica's endpoint written not ready")
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
			st.fleet.mu.Lock()
			defer st.fleet.mu.Unlock()
			failedAt, killedAt, exitedAt = victim.notReadySince, victim.livenessKilledAt, victim.exitedAt
			return victim.starts > starts && victim.ready && st.fleet.published == st.fleet.generation, nil
		}), "the stalled replica restarted by its liveness probe and ready")
		return time.Since(stalledAt)
	})
	to := time.Now()
	unmanaged.settle(to)
	callsAfter, err := apiServerWebhookCalls(ctx, st.s.kubeconfig)
	require.NoError(t, err)
	// The writes in flight when the replica stopped count too: some of them
	// wait on it.
	affected := func(l *load) []result {
		return slices.DeleteFunc(l.between(time.Time{}, to), func(r result) bool { return r.end.Before(stalledAt) })
	}
	managed := splitStall(affected(st.load), outAt, exitedAt)
	other := splitStall(affected(unmanaged), outAt, exitedAt)
	writeResults(t, filepath.Join(st.s.workDir, "stalled-writes.tsv"), stalledAt, append(affected(st.load), affected(unmanaged)...))

	timeline := fmt.Sprintf("readiness failed after %.1fs, endpoint written out after %.1fs, liveness restart after %.1fs, killed after %.1fs",
		failedAt.Sub(stalledAt).Seconds(), outAt.Sub(stalledAt).Seconds(), killedAt.Sub(stalledAt).Seconds(), exitedAt.Sub(stalledAt).Seconds())
	st.report.add(row{scenario: "replica SIGSTOPped", counts: managed.total, recovery: recovery, note: timeline + "; " + managed.note()})
	st.report.add(row{scenario: "  unmanaged writes meanwhile", counts: other.total, recovery: recovery, note: other.note() +
		"; the API server's calls: " + describeCalls(callsBetween(callsBefore, callsAfter))})

	st.fleet.mu.Lock()
	require.Equal(t, restarts+1, victim.livenessRestarts, "the liveness probe restarted the stalled replica once")
	st.fleet.mu.Unlock()
	// The chart's numbers, not the machine's speed: the probes fail on the
	// same stalled process, readiness after fewer, shorter periods.
	require.True(t, failedAt.After(stalledAt) && failedAt.Before(killedAt), "readiness failed the stalled replica (%s) before liveness restarted it (%s)",
		failedAt.Format("15:04:05.000"), killedAt.Format("15:04:05.000"))
	for pod, pid := range others {
		require.Equal(t, pid, st.fleet.pids()[pod], "the other replicas kept running")
	}
	for _, sc := range []stallCounts{managed, other} {
		require.Zero(t, sc.total.wrong, "wrong decisions: %v", sc.total.firstFailures)
		require.Zero(t, sc.failedAfter, "failed after the stalled replica was killed: %v", sc.total.firstFailures)
	}
}

// writeResults writes one line per write, its start relative to zero, for
// reading a scenario's writes one by one.
func writeResults(t *testing.T, path string, zero time.Time, results []result) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintln(&b, "start s\tduration s\toutcome\twrite\terror")
	for _, r := range results {
		fmt.Fprintf(&b, "%.3f\t%.3f\t%s\t%s\t%v\n", r.start.Sub(zero).Seconds(), r.end.Sub(r.start).Seconds(), outcomeNames[r.outcome], r.op, r.err)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// leaderKilled SIGKILLs the leader and deletes a headless Service it
// manages: the other replica must take the Lease and make the Service anew.
func leaderKilled(t *testing.T, st *suite) {
	ctx := t.Context()
	sts := workloads.StatefulSet("leader-probe", policy.StatefulMulti, 0)
	sts.Namespace = st.ns
	require.NoError(t, st.c.Create(ctx, sts))
	svcKey := client.ObjectKey{Namespace: st.ns, Name: sts.Spec.ServiceName}
	require.NoError(t, awaitService(ctx, st.c, svcKey), "the reconciler made %s", svcKey)

	leader := st.fleet.leaseHolder(ctx)
	victim := st.fleet.byPod(leader)
	require.NotNil(t, victim, "the Lease names a replica: %q", leader)
	var leaseMoved, serviceBack time.Duration
	var newLeader string
	c, _, _ := st.killWindow(t, victim, true, func() {
		start := time.Now()
		require.NoError(t, st.c.Delete(ctx, &corev1.Service{ObjectMeta: svcObjectMeta(svcKey)}))
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			newLeader = st.fleet.leaseHolder(ctx)
			return newLeader != "" && newLeader != leader, nil
		}), "another replica takes the Lease")
		leaseMoved = time.Since(start)
		require.NoError(t, awaitService(ctx, st.c, svcKey), "the new leader makes %s anew", svcKey)
		serviceBack = time.Since(start)
	})
	st.report.add(row{scenario: "leader SIGKILLed", counts: c.total, recovery: serviceBack,
		note: fmt.Sprintf("Lease taken after %.1fs; Service back; failed in flight %d, after its endpoint went %d", leaseMoved.Seconds(), c.inFlight, c.after)})
	require.NotNil(t, st.fleet.byPod(newLeader), "the new leader %q is one of the replicas", newLeader)
	require.Zero(t, c.after, "failures after the leader's endpoint was written not ready")
	require.Zero(t, c.total.wrong, "wrong decisions: %v", c.total.firstFailures)
}

func svcObjectMeta(key client.ObjectKey) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}
}

// controlPlaneRestarted restarts one control-plane component (SIGTERM,
// then kwokctl starts it again). statekeeper must come through without a
// restart of its own and decide right afterwards: once the API server
// answers again, no write fails admission, a denial is still denied, and a
// leader reconciles again (a deleted headless Service is made anew).
func controlPlaneRestarted(t *testing.T, st *suite, component string) {
	ctx := t.Context()
	probe := workloads.StatefulSet(component+"-probe", policy.StatefulMulti, 0)
	probe.Namespace = st.ns
	require.NoError(t, st.c.Create(ctx, probe))
	svcKey := client.ObjectKey{Namespace: st.ns, Name: probe.Spec.ServiceName}
	require.NoError(t, awaitService(ctx, st.c, svcKey), "the reconciler made %s", svcKey)

	pids := st.fleet.pids()
	var back time.Time
	c, recovery, _ := st.window(t, func() time.Duration {
		start := time.Now()
		cmd := exec.CommandContext(ctx, clusterScript, "restart", component)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s restart %s: %s", clusterScript, component, out)
		// Recovered: a denial is denied and a managed create mutated again.
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			err := st.c.SubResource("scale").Patch(ctx, named(st.ns, singleName),
				client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":3}}`)), client.DryRunAll)
			if classify(err, policy.RuleSingleInstance) != denied {
				return false, nil
			}
			return mutatedDryRun(ctx, st.c, st.ns) == nil, nil
		}), "statekeeper deciding again")
		back = time.Now()
		return back.Sub(start)
	})
	after := count(st.load.between(back, time.Now()))

	// A leader that could not renew its Lease stops its reconcilers and
	// campaigns again; no replica exits.
	require.Equal(t, pids, st.fleet.pids(), "no replica restarted")
	start := time.Now()
	require.NoError(t, st.c.Delete(ctx, &corev1.Service{ObjectMeta: svcObjectMeta(svcKey)}))
	require.NoError(t, awaitService(ctx, st.c, svcKey), "a leader makes %s anew", svcKey)
	serviceBack := time.Since(start)
	leader := st.fleet.leaseHolder(ctx)
	require.NotNil(t, st.fleet.byPod(leader), "the Lease names a replica: %q", leader)

	st.report.add(row{scenario: component + " restarted", counts: c, recovery: recovery,
		note: fmt.Sprintf("until a denial is denied again; failed after that %d; no replica restarted; a deleted Service back after %.1fs",
			after.failed, serviceBack.Seconds())})
	require.Zero(t, after.failed, "failed admissions once statekeeper decided again: %v", after.firstFailures)
	require.Zero(t, c.wrong, "wrong decisions: %v", c.firstFailures)
}

// awaitService waits until the Service of key exists and is not being deleted.
func awaitService(ctx context.Context, c client.Client, key client.ObjectKey) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var svc corev1.Service
		err := c.Get(ctx, key, &svc)
		return err == nil && svc.DeletionTimestamp == nil, nil
	})
}

// burst creates st.s.burst managed workloads at once beside the load, a
// tenth of them denied: each must be decided right, none time out.
func burst(t *testing.T, st *suite) {
	ctx := t.Context()
	var bc counts
	c, recovery, _ := st.window(t, func() time.Duration {
		start := time.Now()
		var mu sync.Mutex
		var results []result
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 { // writers at once; the API server's inflight limit is far above this
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(st.s.burst) {
						return
					}
					var want policy.Rule
					var obj client.Object
					switch {
					case i%10 == 0:
						want = policy.RuleSingleInstance
						d := workloads.Deployment(fmt.Sprintf("burst-x-%d", i), policy.StatelessSingle, 3)
						obj = d
					case i%2 == 0:
						obj = workloads.Deployment(fmt.Sprintf("burst-d-%d", i), policy.StatelessMulti, 0)
					default:
						obj = workloads.StatefulSet(fmt.Sprintf("burst-s-%d", i), policy.StatefulMulti, 0)
					}
					obj.SetNamespace(st.ns)
					reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
					begin := time.Now()
					err := st.c.Create(reqCtx, obj)
					cancel()
					if sts, ok := obj.(*appsv1.StatefulSet); ok && err == nil && sts.Spec.ServiceName == "" {
						err = errNotMutated
					}
					mu.Lock()
					results = append(results, result{op: "burst create", start: begin, end: time.Now(), outcome: classify(err, want), err: err})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		bc = count(results)
		return time.Since(start)
	})
	st.report.add(row{scenario: fmt.Sprintf("burst of %d creates", st.s.burst), counts: bc, recovery: recovery,
		note: fmt.Sprintf("time to create all; the steady load meanwhile: %d sent, %d failed", c.sent, c.failed)})
	require.Equal(t, st.s.burst, bc.sent)
	require.Equal(t, st.s.burst/10, bc.denied, "every tenth denied")
	require.Zero(t, bc.failed, "failed or timed out: %v", bc.firstFailures)
	require.Zero(t, bc.wrong, "wrong decisions: %v", bc.firstFailures)
	require.Zero(t, bc.unavailable)
	requireNoFailures(t, c)
}

// pemLeaf is the DER of the first certificate in a PEM bundle.
func pemLeaf(t *testing.T, bundle []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(bundle)
	require.NotNil(t, block, "no PEM certificate")
	return block.Bytes
}
