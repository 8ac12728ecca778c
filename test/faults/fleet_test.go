//go:build faults

package faults

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/podproc"
)

// sliceManager marks the EndpointSlice the supervisor writes; the
// endpoint-slice controller leaves slices of other managers alone.
const sliceManager = "faults.statekeeper.io"

// fleet plays the Deployment controller, the kubelet and the endpoint-slice
// controller for the chart's statekeeper pods (see the package doc).
type fleet struct {
	s          settings
	c          client.Client
	deployment string // the chart's Deployment in releaseNamespace
	service    string // the chart's webhook Service
	secret     string // the TLS Secret the pods mount
	// portName is the Service's port, targetPort the container's webhook
	// port it maps to: what the EndpointSlice lists.
	portName   string
	targetPort int32

	mu       sync.Mutex
	replicas []*replica
	seq      int
	// generation counts changes of what the EndpointSlice shows; published
	// is the generation last written.
	generation, published int
	wake                  chan struct{}
	// leaseKeptAfterExit counts leaders whose Lease still named them after
	// a graceful stop: the Lease was not released.
	leaseKeptAfterExit int
	terminations       sync.WaitGroup
	stopped            chan struct{}
	// events is the supervisor's own log: what it did to which pod, when.
	events *os.File
}

// logf writes one line to the supervisor's log.
func (f *fleet) logf(format string, args ...any) {
	fmt.Fprintf(f.events, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// replica is one pod: a statekeeper process on a test host of its own.
type replica struct {
	pod      string // the pod's name, the process's hostname
	template string // hash of the pod template it runs
	host     *testHost
	certDir  string
	logPath  string
	args     []string
	env      []string
	// readiness and liveness are the container's probes.
	readiness, liveness probeSpec
	grace               time.Duration

	// Guarded by fleet.mu.
	proc        *podproc.Process
	exited      chan struct{} // closed when proc exits, with ready false
	ready       bool
	terminating bool
	holdRestart bool
	starts      int
	startedAt   time.Time
	crashes     int
	// notReadyAt is when an exit was last written into the EndpointSlice.
	notReadyAt time.Time
	// notReadySince is when the readiness probe last failed the replica
	// (the EndpointSlice shows it later, once written).
	notReadySince time.Time
	// exitedAt is when the process last exited.
	exitedAt time.Time
	// livenessRestarts counts the containers the liveness probe restarted,
	// livenessKilledAt when the last of them was stopped.
	livenessRestarts int
	livenessKilledAt time.Time
}

// probeSpec is an HTTP probe of the chart's container, as the kubelet runs
// it: a GET on a new connection that must answer 2xx or 3xx within timeout, every period from
// initialDelay after the container started; threshold failures in a row
// fail it.
type probeSpec struct {
	url          string
	initialDelay time.Duration
	period       time.Duration
	timeout      time.Duration
	threshold    int
	// grace replaces the pod's termination grace period when the probe
	// restarts the container (0: the pod's).
	grace time.Duration
}

// probeSpecOf reads an HTTP probe of c, with the API server's defaults for
// the fields left out, and its URL on addr.
func probeSpecOf(c *corev1.Container, p *corev1.Probe, what string, addr netip.Addr) (probeSpec, error) {
	if p == nil || p.HTTPGet == nil {
		return probeSpec{}, fmt.Errorf("the chart's container has no HTTP %s probe", what)
	}
	port, err := containerPort(c, p.HTTPGet.Port.String())
	if err != nil {
		return probeSpec{}, err
	}
	seconds := func(v, def int32) time.Duration { return time.Duration(cmp.Or(v, def)) * time.Second }
	return probeSpec{
		url:          fmt.Sprintf("http://%s%s", net.JoinHostPort(addr.String(), fmt.Sprint(port)), p.HTTPGet.Path),
		initialDelay: seconds(p.InitialDelaySeconds, 0),
		period:       seconds(p.PeriodSeconds, 10),
		timeout:      seconds(p.TimeoutSeconds, 1),
		threshold:    int(cmp.Or(p.FailureThreshold, 3)),
		grace:        time.Duration(ptr.Deref(p.TerminationGracePeriodSeconds, 0)) * time.Second,
	}, nil
}

// probeClient opens a connection per probe, as the kubelet's prober does.
func probeClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// passes runs the probe once.
func (p probeSpec) passes(c *http.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

func newFleet(s settings, c client.Client, deployment, service, secret, portName string, targetPort int32) *fleet {
	f := &fleet{s: s, c: c, deployment: deployment, service: service, secret: secret, portName: portName, targetPort: targetPort,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	f.events, _ = os.Create(filepath.Join(s.workDir, "supervisor.log"))
	go f.publishLoop()
	return f
}

// --- the Deployment controller -----------------------------------------------

// rollout brings the replicas to the Deployment's replica count and pod
// template the way the chart's strategy does (maxSurge 1, maxUnavailable 0):
// a new replica starts and must be ready before an old one is deleted. It
// returns once the old replicas are gone.
func (f *fleet) rollout(ctx context.Context) error {
	var deploy appsv1.Deployment
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: f.deployment}, &deploy); err != nil {
		return err
	}
	want := int(ptr.Deref(deploy.Spec.Replicas, 1))
	if want < f.s.replicas {
		want = f.s.replicas // the chart's pods never run here; the suite's count is the floor
	}
	hash := templateHash(&deploy.Spec.Template)
	for {
		current, old := f.split(hash)
		switch {
		case len(old) > 0 && len(current)+len(old) > want:
			f.terminate(old[0]) // the surge is used up: one old pod goes
		case len(current) < want:
			r, err := f.start(ctx, &deploy, hash)
			if err != nil {
				return err
			}
			if err := f.waitReady(ctx, r); err != nil {
				return err
			}
		case len(old) > 0:
			f.terminate(old[0])
		case len(current) > want:
			f.terminate(current[len(current)-1])
		default:
			f.terminations.Wait()
			return nil
		}
	}
}

// split returns the replicas not being deleted, those running template and
// the others.
func (f *fleet) split(template string) (current, old []*replica) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.replicas {
		switch {
		case r.terminating:
		case r.template == template:
			current = append(current, r)
		default:
			old = append(old, r)
		}
	}
	return current, old
}

func templateHash(t *corev1.PodTemplateSpec) string {
	raw, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(raw)
	return fmt.Sprintf("%08x", h.Sum32())
}

// --- the kubelet ---------------------------------------------------------------

// start creates a pod of deploy on a new test host and starts its container.
func (f *fleet) start(ctx context.Context, deploy *appsv1.Deployment, hash string) (*replica, error) {
	container, err := podproc.Container(deploy, chartContainer)
	if err != nil {
		return nil, err
	}
	env, err := podproc.Env(container, releaseNamespace)
	if err != nil {
		return nil, err
	}
	host, err := newTestHost(ctx)
	if err != nil {
		return nil, err
	}
	readiness, err := probeSpecOf(container, container.ReadinessProbe, "readiness", host.addr)
	if err != nil {
		return nil, err
	}
	liveness, err := probeSpecOf(container, container.LivenessProbe, "liveness", host.addr)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.seq++
	pod := fmt.Sprintf("%s-%s-%d", f.deployment, hash, f.seq)
	f.mu.Unlock()

	dir := filepath.Join(f.s.workDir, "pods", pod)
	r := &replica{
		pod: pod, template: hash, host: host,
		certDir:   filepath.Join(dir, "serving-certs"),
		logPath:   filepath.Join(f.s.workDir, pod+".log"),
		env:       env,
		readiness: readiness,
		liveness:  liveness,
		grace:     time.Duration(ptr.Deref(deploy.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second,
	}
	if err := os.MkdirAll(r.certDir, 0o700); err != nil {
		return nil, err
	}
	if err := f.mountSecret(ctx, r); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	err = podproc.ImpersonatingKubeconfig(f.s.kubeconfig, kubeconfig, releaseNamespace, deploy.Spec.Template.Spec.ServiceAccountName,
		func(c *clientcmdapi.Cluster) {
			// The replica reaches the API server through its side of the
			// veth pair; the certificate still names the loopback address.
			u, _ := url.Parse(c.Server)
			c.TLSServerName = u.Hostname()
			u.Host = net.JoinHostPort(host.hostAddr.String(), u.Port())
			c.Server = u.String()
		})
	if err != nil {
		return nil, err
	}
	r.args = podproc.Args(container.Args, map[string]string{
		"cert-dir":   r.certDir,
		"kubeconfig": kubeconfig,
	})

	f.mu.Lock()
	f.replicas = append(f.replicas, r)
	f.mu.Unlock()
	if err := f.run(r); err != nil {
		return nil, err
	}
	go f.probe(r)
	go f.probeLiveness(r)
	return r, nil
}

func containerPort(c *corev1.Container, name string) (int32, error) {
	for _, p := range c.Ports {
		if p.Name == name || fmt.Sprint(p.ContainerPort) == name {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container %s has no port %q", c.Name, name)
}

// run starts r's process in its network namespace, in a UTS namespace whose
// hostname is the pod's name; caller must not hold f.mu.
func (f *fleet) run(r *replica) error {
	// ip netns exec, unshare and the shell each exec the next, so the
	// process started is statekeeper itself and gets the signals.
	args := append([]string{"netns", "exec", r.host.name, "unshare", "--uts", "sh", "-c", `hostname "$0" && exec "$@"`, r.pod, f.s.statekeeper}, r.args...)
	proc, err := podproc.Start(podproc.Command{
		Name: r.pod, Binary: "ip", Args: args, Env: r.env, Log: r.logPath,
		// Should the suite die without its cleanup, its replicas die with
		// it rather than hold the Lease.
		EndWithParent: syscall.SIGKILL,
	})
	if err != nil {
		return err
	}
	f.logf("%s: started pid %d on %s (%s)", r.pod, proc.Pid(), r.host.name, r.host.addr)
	exited := make(chan struct{})
	f.mu.Lock()
	r.proc, r.exited = proc, exited
	r.starts++
	r.startedAt = time.Now()
	f.mu.Unlock()
	go func() {
		<-proc.Done()
		f.exited(r, exited)
	}()
	return nil
}

// exited marks r not ready at once, and restarts it unless it is being
// deleted or held down (restartPolicy Always).
func (f *fleet) exited(r *replica, exited chan struct{}) {
	f.mu.Lock()
	close(exited)
	r.ready = false
	r.exitedAt = time.Now()
	restart := !r.terminating && !r.holdRestart
	// The kubelet's crash-loop back-off: a process that ran a while is
	// restarted at once, one that keeps dying waits 10s, 20s, 40s.
	if time.Since(r.startedAt) < 10*time.Second {
		r.crashes++
	} else {
		r.crashes = 0
	}
	backoff := time.Duration(0)
	if r.crashes > 0 {
		backoff = min(10*time.Second<<(r.crashes-1), 40*time.Second)
	}
	f.changedLocked()
	f.mu.Unlock()
	f.logf("%s: exited (restart: %v, back-off %s)", r.pod, restart, backoff)
	if !restart {
		return
	}
	select {
	case <-time.After(backoff):
	case <-f.stopped:
		return
	}
	f.mu.Lock()
	restart = !r.terminating && !r.holdRestart && isClosed(r.exited)
	f.mu.Unlock()
	if restart {
		_ = f.run(r)
	}
}

// probe runs r's readiness probe while r exists, every period (a probe
// that hangs takes its timeout out of the period, as the kubelet's ticker
// does): ready after one success, not ready after threshold failures in a
// row.
func (f *fleet) probe(r *replica) {
	httpClient := probeClient()
	ticker := time.NewTicker(r.readiness.period)
	defer ticker.Stop()
	failures := 0
	for {
		f.mu.Lock()
		gone := !slices.Contains(f.replicas, r)
		running := r.proc != nil && !isClosed(r.exited)
		f.mu.Unlock()
		if gone {
			return
		}
		ok := running && r.readiness.passes(httpClient)
		f.mu.Lock()
		switch {
		case ok:
			failures = 0
			if !r.ready && running && !isClosed(r.exited) {
				r.ready = true
				f.changedLocked()
				f.logf("%s: ready", r.pod)
			}
		default:
			failures++
			if r.ready && failures >= r.readiness.threshold {
				r.ready = false
				r.notReadySince = time.Now()
				f.changedLocked()
				f.logf("%s: not ready after %d failed probes", r.pod, failures)
			}
		}
		f.mu.Unlock()
		select {
		case <-ticker.C:
		case <-f.stopped:
			return
		}
	}
}

// probeLiveness runs r's liveness probe while r exists, from initialDelay
// after each start of its process: after threshold failures in a row it
// restarts the container as the kubelet does (SIGTERM, SIGKILL after the
// probe's grace period or else the pod's; restartPolicy Always starts it
// again), and probes the new
// process afresh.
func (f *fleet) probeLiveness(r *replica) {
	httpClient := probeClient()
	ticker := time.NewTicker(r.liveness.period)
	defer ticker.Stop()
	failures := 0
	for {
		select {
		case <-ticker.C:
		case <-f.stopped:
			return
		}
		f.mu.Lock()
		gone := !slices.Contains(f.replicas, r)
		proc, exited, startedAt, terminating := r.proc, r.exited, r.startedAt, r.terminating
		f.mu.Unlock()
		if gone {
			return
		}
		if terminating || isClosed(exited) || time.Since(startedAt) < r.liveness.initialDelay {
			failures = 0
			continue
		}
		if r.liveness.passes(httpClient) {
			failures = 0
			continue
		}
		if failures++; failures < r.liveness.threshold {
			continue
		}
		failures = 0
		f.mu.Lock()
		r.livenessRestarts++
		r.livenessKilledAt = time.Now()
		f.mu.Unlock()
		grace := cmp.Or(r.liveness.grace, r.grace)
		f.logf("%s: liveness failed %d times: restarting the container (SIGTERM, SIGKILL after %s)", r.pod, r.liveness.threshold, grace)
		proc.Terminate(grace)
		select {
		case <-exited:
		case <-f.stopped:
			return
		}
	}
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitReady waits until r's endpoint is written ready.
func (f *fleet) waitReady(ctx context.Context, r *replica) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return r.ready && f.published == f.generation, nil
	})
	if err != nil {
		return fmt.Errorf("%s is not ready (see %s and supervisor.log): %w", r.pod, r.logPath, err)
	}
	return nil
}

// terminate deletes r's pod: SIGTERM, the endpoint written terminating,
// SIGKILL after the grace period, then the endpoint and the host removed.
func (f *fleet) terminate(r *replica) {
	f.mu.Lock()
	r.terminating = true
	proc, exited := r.proc, r.exited
	f.mu.Unlock()
	leader := f.leaseHolder(context.Background())
	proc.Terminate(r.grace)
	f.changed()
	f.logf("%s: SIGTERM, terminating (leader: %v)", r.pod, leader == r.pod)
	f.terminations.Add(1)
	go func() {
		defer f.terminations.Done()
		<-exited
		if leader == r.pod && f.leaseHolder(context.Background()) == r.pod {
			f.mu.Lock()
			f.leaseKeptAfterExit++
			f.mu.Unlock()
		}
		f.mu.Lock()
		f.replicas = slices.DeleteFunc(f.replicas, func(x *replica) bool { return x == r })
		f.changedLocked()
		f.mu.Unlock()
		_ = f.waitPublished(context.Background())
		_ = r.host.remove()
	}()
}

// kill sends SIGKILL to r's process; hold keeps it from being restarted
// until release.
func (f *fleet) kill(r *replica, hold bool) {
	f.mu.Lock()
	r.holdRestart = hold
	proc := r.proc
	f.mu.Unlock()
	proc.Kill()
	f.logf("%s: SIGKILL (hold restart: %v)", r.pod, hold)
}

// stall stops r's process without ending it (SIGSTOP), as a deadlock, CPU
// throttling or a long pause would: the kernel still accepts connections
// on its sockets, and nothing answers them.
func (f *fleet) stall(r *replica) error {
	f.mu.Lock()
	proc := r.proc
	f.mu.Unlock()
	if err := syscall.Kill(proc.Pid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stopping %s: %w", r.pod, err)
	}
	f.logf("%s: SIGSTOP (pid %d)", r.pod, proc.Pid())
	return nil
}

// resumeStalled continues every process still stopped by stall (SIGCONT),
// so that a failed scenario leaves none behind.
func (f *fleet) resumeStalled() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.replicas {
		if r.proc != nil && !isClosed(r.exited) {
			_ = syscall.Kill(r.proc.Pid(), syscall.SIGCONT)
		}
	}
}

// release restarts a replica held down by kill.
func (f *fleet) release(r *replica) error {
	f.mu.Lock()
	r.holdRestart = false
	restart := isClosed(r.exited)
	f.mu.Unlock()
	if restart {
		return f.run(r)
	}
	return nil
}

// stopAll deletes every pod and waits until they are gone.
func (f *fleet) stopAll() {
	f.mu.Lock()
	all := slices.Clone(f.replicas)
	f.mu.Unlock()
	for _, r := range all {
		if !r.terminating {
			f.terminate(r)
		}
	}
	f.terminations.Wait()
	close(f.stopped)
}

// pids are the running processes by pod.
func (f *fleet) pids() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, r := range f.replicas {
		if r.proc != nil && !isClosed(r.exited) {
			out[r.pod] = r.proc.Pid()
		}
	}
	return out
}

func (f *fleet) byPod(pod string) *replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.replicas {
		if r.pod == pod {
			return r
		}
	}
	return nil
}

// leaseHolder is the pod named by the leader-election Lease ("" if none):
// controller-runtime names the holder "<hostname>_<uuid>".
func (f *fleet) leaseHolder(ctx context.Context) string {
	var lease coordinationv1.Lease
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: server.LeaderElectionID}, &lease); err != nil {
		return ""
	}
	holder, _, _ := strings.Cut(ptr.Deref(lease.Spec.HolderIdentity, ""), "_")
	return holder
}

// --- the Secret volume ----------------------------------------------------------

// mountSecret writes the TLS Secret's keys into r's certificate directory
// the way the kubelet updates a Secret volume: the files live in a new
// timestamped directory, ..data is swapped to it in one rename, and the
// visible names are symlinks through ..data.
func (f *fleet) mountSecret(ctx context.Context, r *replica) error {
	var secret corev1.Secret
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: f.secret}, &secret); err != nil {
		return err
	}
	stamp := filepath.Join(r.certDir, ".."+time.Now().Format("2006_01_02_15_04_05.000000000"))
	if err := os.Mkdir(stamp, 0o700); err != nil {
		return err
	}
	for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if err := os.WriteFile(filepath.Join(stamp, key), secret.Data[key], 0o400); err != nil {
			return err
		}
	}
	data := filepath.Join(r.certDir, "..data")
	previous, _ := os.Readlink(data)
	tmp := data + "_tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(stamp), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, data); err != nil {
		return err
	}
	for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		link := filepath.Join(r.certDir, key)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
				return err
			}
		}
	}
	if previous != "" {
		return os.RemoveAll(filepath.Join(r.certDir, previous))
	}
	return nil
}

// remountAll syncs the Secret volume of every replica.
func (f *fleet) remountAll(ctx context.Context) error {
	f.mu.Lock()
	all := slices.Clone(f.replicas)
	f.mu.Unlock()
	for _, r := range all {
		if err := f.mountSecret(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", r.pod, err)
		}
	}
	return nil
}

// servedCertificates are the leaf certificates the replicas serve now.
func (f *fleet) servedCertificates(port int32) map[string][]byte {
	f.mu.Lock()
	all := slices.Clone(f.replicas)
	f.mu.Unlock()
	out := map[string][]byte{}
	for _, r := range all {
		dialer := &net.Dialer{Timeout: time.Second}
		conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort(r.host.addr.String(), fmt.Sprint(port)),
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the certificate presented is read
		if err != nil {
			continue
		}
		out[r.pod] = conn.ConnectionState().PeerCertificates[0].Raw
		conn.Close()
	}
	return out
}

// --- the endpoint-slice controller -------------------------------------------------

func (f *fleet) changed() {
	f.mu.Lock()
	f.changedLocked()
	f.mu.Unlock()
}

func (f *fleet) changedLocked() {
	f.generation++
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// publishLoop writes the EndpointSlice after every change, and retries
// while the API server refuses (it may be restarting).
func (f *fleet) publishLoop() {
	for {
		select {
		case <-f.wake:
		case <-time.After(500 * time.Millisecond):
		case <-f.stopped:
			return
		}
		f.mu.Lock()
		gen := f.generation
		stale := gen != f.published
		slice := f.sliceLocked()
		f.mu.Unlock()
		if !stale {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f.writeSlice(ctx, slice)
		cancel()
		if err != nil {
			f.logf("writing the EndpointSlice: %v", err)
			continue
		}
		f.logf("EndpointSlice: %s", describeEndpoints(slice))
		now := time.Now()
		f.mu.Lock()
		f.published = gen
		for _, r := range f.replicas {
			if !r.ready && r.notReadyAt.IsZero() {
				r.notReadyAt = now
			}
			if r.ready {
				r.notReadyAt = time.Time{}
			}
		}
		f.mu.Unlock()
	}
}

// waitPublished waits until the EndpointSlice shows the latest change.
func (f *fleet) waitPublished(ctx context.Context) error {
	f.mu.Lock()
	want := f.generation
	f.mu.Unlock()
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.published >= want, nil
	})
}

// sliceLocked is the EndpointSlice the endpoint-slice controller would
// write for the replicas: ready = probe passing and not terminating,
// serving = probe passing, terminating = pod deleted.
func (f *fleet) sliceLocked() *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      f.service + "-faults",
			Namespace: releaseNamespace,
			Labels:    map[string]string{discoveryv1.LabelServiceName: f.service, discoveryv1.LabelManagedBy: sliceManager},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To(f.portName), Port: ptr.To(f.targetPort), Protocol: ptr.To(corev1.ProtocolTCP),
		}},
		Endpoints: []discoveryv1.Endpoint{},
	}
	for _, r := range f.replicas {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{r.host.addr.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(r.ready && !r.terminating),
				Serving:     ptr.To(r.ready),
				Terminating: ptr.To(r.terminating),
			},
			Hostname: ptr.To(r.pod),
		})
	}
	return slice
}

func (f *fleet) writeSlice(ctx context.Context, want *discoveryv1.EndpointSlice) error {
	var got discoveryv1.EndpointSlice
	err := f.c.Get(ctx, client.ObjectKeyFromObject(want), &got)
	if apierrors.IsNotFound(err) {
		return f.c.Create(ctx, want)
	}
	if err != nil {
		return err
	}
	got.Labels, got.Endpoints, got.Ports = want.Labels, want.Endpoints, want.Ports
	return f.c.Update(ctx, &got)
}

// deleteSlice removes the EndpointSlice, as the controller does with the
// Service.
func (f *fleet) deleteSlice(ctx context.Context) error {
	err := f.c.Delete(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: f.service + "-faults", Namespace: releaseNamespace}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func describeEndpoints(s *discoveryv1.EndpointSlice) string {
	var parts []string
	for _, e := range s.Endpoints {
		parts = append(parts, fmt.Sprintf("%s ready=%v serving=%v terminating=%v", ptr.Deref(e.Hostname, "?"),
			ptr.Deref(e.Conditions.Ready, false), ptr.Deref(e.Conditions.Serving, false), ptr.Deref(e.Conditions.Terminating, false)))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}
