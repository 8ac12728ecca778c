package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/hack/measure/internal/cpuprofile"
)

// server is one process the webhooks can point at.
type server struct {
	name       string
	base       string // https://127.0.0.1:port
	metricsURL string
	pid        int
	// pprofAddr serves /debug/pprof (statekeeper with --profile-dir).
	pprofAddr string
}

// profile starts a CPU profile of the process over d (plus a second, so
// that the profile covers all of it) and returns what waits for it and
// writes it to path.
func (s *server) profile(ctx context.Context, path string, d time.Duration) func() error {
	return cpuprofile.Start(ctx, s.pprofAddr, d+time.Second, path)
}

// admissions is how many admission requests the process has answered:
// controller-runtime's webhook request counter, summed over the paths.
func (s *server) admissions(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "controller_runtime_webhook_requests_total{") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, sc.Err()
}

// cpu is the process's user + system CPU time so far (/proc/PID/stat).
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which may hold spaces: state is
	// the first, utime the 12th and stime the 13th.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	if err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// writes are the latencies of one phase's writes and its failures.
type writes struct {
	latencies []time.Duration
	failures  int
	firstErr  error
	wall      time.Duration
	mu        sync.Mutex
}

func (w *writes) record(d time.Duration, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failures++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.latencies = append(w.latencies, d)
}

func timed(w *writes, write func() error) {
	start := time.Now()
	err := write()
	w.record(time.Since(start), err)
}

// load is the workload of one round, the same in every round.
type load struct {
	kube        kubernetes.Interface
	namespace   string
	burst       int
	concurrency int
	mixRate     int
	mixDuration time.Duration
}

// runBurst creates l.burst managed Deployments, l.concurrency at a time, as
// a Helm install or a GitOps sync of many releases does.
func (l load) runBurst(ctx context.Context) *writes {
	return l.eachBurst(func(name string) error {
		_, err := l.kube.AppsV1().Deployments(l.namespace).Create(ctx, deployment(name, 2), metav1.CreateOptions{})
		return err
	})
}

// eachBurst writes once per burst Deployment, l.concurrency at a time.
func (l load) eachBurst(write func(name string) error) *writes {
	w := &writes{}
	names := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range l.concurrency {
		wg.Go(func() {
			for name := range names {
				timed(w, func() error { return write(name) })
			}
		})
	}
	for i := range l.burst {
		names <- burstName(i)
	}
	close(names)
	wg.Wait()
	w.wall = time.Since(start)
	return w
}

func burstName(i int) string { return fmt.Sprintf("burst-%04d", i) }

// runMix writes at l.mixRate per second for l.mixDuration, in turn: a
// managed Deployment CREATE, an UPDATE of a burst Deployment (an
// annotation, as kubectl annotate), a /scale of another, and the CREATE of
// a pod owned by the round's StatefulSet (/mutate-pods stamps its
// identity). The pods are created directly, bound to a node that does not
// exist, so that no scheduler or kubelet works on them.
func (l load) runMix(ctx context.Context, owner *appsv1.StatefulSet) *writes {
	w := &writes{}
	total := l.mixRate * int(l.mixDuration/time.Second)
	tick := time.NewTicker(time.Second / time.Duration(l.mixRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		<-tick.C
		target := burstName(i % l.burst)
		var write func() error
		switch i % 4 {
		case 0:
			write = func() error {
				_, err := l.kube.AppsV1().Deployments(l.namespace).Create(ctx, deployment(fmt.Sprintf("mix-%04d", i), 2), metav1.CreateOptions{})
				return err
			}
		case 1:
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"measure/touched":"%d"}}}`, i)
			write = func() error {
				_, err := l.kube.AppsV1().Deployments(l.namespace).Patch(ctx, target, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				return err
			}
		case 2:
			patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, 2+i%2)
			write = func() error {
				_, err := l.kube.AppsV1().Deployments(l.namespace).Patch(ctx, target, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "scale")
				return err
			}
		case 3:
			pod := ownedPod(owner, i/4)
			write = func() error {
				_, err := l.kube.CoreV1().Pods(l.namespace).Create(ctx, pod, metav1.CreateOptions{})
				return err
			}
		}
		wg.Go(func() { timed(w, write) })
	}
	wg.Wait()
	w.wall = time.Since(start)
	return w
}

// runRollout bumps the image of every burst Deployment, l.concurrency at a
// time, as a release of a new version across many workloads does (the
// Deployments are paused: the UPDATE is what is measured, not the rollout
// the controller would then make).
func (l load) runRollout(ctx context.Context) *writes {
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"registry.example/app:1.1"}]}}}}`)
	return l.eachBurst(func(name string) error {
		_, err := l.kube.AppsV1().Deployments(l.namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

const ownerName = "db"

// statefulSet is the managed StatefulSet the mix's pods belong to, with no
// replicas of its own.
func statefulSet() *appsv1.StatefulSet {
	labels := map[string]string{"app": ownerName}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: ownerName, Labels: map[string]string{"app": ownerName, "statekeeper.io/deploy-type": "stateful-multi"}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels),
		},
	}
}

// ownedPod is the StatefulSet's pod of ordinal i, as its controller would
// write it, with labels outside the StatefulSet's selector (so that its
// controller, which runs none, leaves it alone) and bound to a node that does not
// exist.
func ownedPod(owner *appsv1.StatefulSet, i int) *corev1.Pod {
	name := fmt.Sprintf("%s-%d", owner.Name, i)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app": owner.Name + "-direct", "statefulset.kubernetes.io/pod-name": name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: owner.Name, UID: owner.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:   "measure-nowhere",
			Hostname:   name,
			Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1.0"}},
		},
	}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "registry.example/app:1.0",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
		}}},
	}
}

// clean deletes what a round wrote (the webhooks unregistered first, so
// that every variant's cleanup is alike) and waits until it is gone.
func (l load) clean(ctx context.Context) error {
	now := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	all := metav1.ListOptions{}
	if err := l.kube.CoreV1().Pods(l.namespace).DeleteCollection(ctx, now, all); err != nil {
		return err
	}
	if err := l.kube.AppsV1().Deployments(l.namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, all); err != nil {
		return err
	}
	if err := l.kube.AppsV1().StatefulSets(l.namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, all); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := l.kube.CoreV1().Pods(l.namespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, err
		}
		deps, err := l.kube.AppsV1().Deployments(l.namespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, err
		}
		sts, err := l.kube.AppsV1().StatefulSets(l.namespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, err
		}
		return len(pods.Items)+len(deps.Items)+len(sts.Items) == 0, nil
	})
}
