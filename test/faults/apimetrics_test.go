//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// webhookCalls are the API server's own counts of its calls to one webhook
// entry (its /metrics): what a fault cost, call by call, whatever else
// slowed the writes down.
type webhookCalls struct {
	calls int
	// overOneSecond are the calls that took longer than 1 s (the latency
	// histogram's bucket boundary): a call to a replica that answers takes
	// milliseconds on an idle control plane.
	overOneSecond int
	// failedClosed are the calls that failed (no answer within the
	// timeout, no connection) on an entry that fails closed: refused
	// writes; failedOpen those on an entry that fails open: writes
	// admitted unchecked.
	failedClosed, failedOpen int
}

func (w webhookCalls) minus(o webhookCalls) webhookCalls {
	return webhookCalls{calls: w.calls - o.calls, overOneSecond: w.overOneSecond - o.overOneSecond,
		failedClosed: w.failedClosed - o.failedClosed, failedOpen: w.failedOpen - o.failedOpen}
}

var webhookNameLabel = regexp.MustCompile(`[{,]name="([^"]+\.statekeeper\.io)"`)

// apiServerWebhookCalls reads the API server's webhook metrics, by entry.
func apiServerWebhookCalls(ctx context.Context, kubeconfig string) (map[string]webhookCalls, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("the API server's /metrics: %w", err)
	}
	out := map[string]webhookCalls{}
	lines := bufio.NewScanner(strings.NewReader(string(raw)))
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		line := lines.Text()
		m := webhookNameLabel.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("the API server's /metrics: %q: %w", line, err)
		}
		n := int(v)
		w := out[m[1]]
		switch {
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_count{"):
			w.calls += n
			w.overOneSecond += n
		case strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_bucket{") && strings.Contains(line, `le="1"`):
			w.overOneSecond -= n
		case strings.HasPrefix(line, "apiserver_admission_webhook_rejection_count{") && strings.Contains(line, `error_type="calling_webhook_error"`):
			w.failedClosed += n
		case strings.HasPrefix(line, "apiserver_admission_webhook_fail_open_count{"):
			w.failedOpen += n
		}
		out[m[1]] = w
	}
	return out, lines.Err()
}

// callsBetween are the calls of each entry from before to after, the
// entries without calls left out.
func callsBetween(before, after map[string]webhookCalls) map[string]webhookCalls {
	out := map[string]webhookCalls{}
	for name, w := range after {
		if d := w.minus(before[name]); d.calls > 0 || d.failedClosed > 0 || d.failedOpen > 0 {
			out[name] = d
		}
	}
	return out
}

func describeCalls(calls map[string]webhookCalls) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		w := calls[name]
		parts = append(parts, fmt.Sprintf("%s %d calls, %d over 1s, %d failed closed, %d failed open",
			strings.TrimSuffix(name, ".statekeeper.io"), w.calls, w.overOneSecond, w.failedClosed, w.failedOpen))
	}
	return strings.Join(parts, "; ")
}
