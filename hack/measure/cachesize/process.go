package main

import (
	"context"
	"net/http"
	"time"

	"github.com/statekeeper/statekeeper/hack/measure/internal/servecmd"
	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/podproc"
)

// pollInterval is how often the process's state is read while waiting.
const pollInterval = 500 * time.Millisecond

// process is the measured `statekeeper serve` and its /metrics.
type process struct {
	*podproc.Process
	readyURL string
	metrics  metricsClient
}

// startServer starts statekeeper with leader election on, so that the
// reconciler runs and its cache is filled as in a real deployment. Its log
// holds this run only.
func startServer(opts servecmd.Options) (*process, error) {
	opts.LeaderElect = true
	if err := podproc.FreshLog(opts.LogFile); err != nil {
		return nil, err
	}
	p, err := podproc.Start(opts.Command())
	if err != nil {
		return nil, err
	}
	return &process{Process: p, readyURL: opts.ReadyURL(),
		metrics: metricsClient{url: opts.MetricsURL(), http: &http.Client{Timeout: 10 * time.Second}}}, nil
}

// waitLeading waits until statekeeper is ready (caches synced, webhook
// server listening) and has won the election, so its reconciler runs.
func (p *process) waitLeading(ctx context.Context, timeout time.Duration) error {
	if err := p.WaitReady(ctx, p.readyURL, timeout); err != nil {
		return err
	}
	return p.Poll(ctx, "statekeeper to lead", pollInterval, timeout, func(ctx context.Context) (bool, error) {
		s, err := p.metrics.scrape(ctx)
		if err != nil {
			return false, nil
		}
		v, _ := s.value(server.LeadingMetric, nil)
		return v == 1, nil
	})
}

// waitIdle waits until no controller has work queued or in hand, three
// scrapes in a row: a reading taken while the reconcilers and the audit
// still work through a burst would count what they hold in flight (lists,
// copies, requests) as the caches' cost. Work delayed on purpose (a requeue
// after an interval) is not queued until it is due.
func (p *process) waitIdle(ctx context.Context, timeout time.Duration) error {
	quiet := 0
	return p.Poll(ctx, "the controllers to be idle", pollInterval, timeout, func(ctx context.Context) (bool, error) {
		s, err := p.metrics.scrape(ctx)
		if err != nil {
			return false, err
		}
		depth, _ := s.value(metricQueueDepth, nil)
		active, _ := s.value(metricActive, nil)
		if depth+active > 0 {
			quiet = 0
			return false, nil
		}
		quiet++
		return quiet >= 3, nil
	})
}
