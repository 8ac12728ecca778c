package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statekeeper/statekeeper/hack/measure/internal/stats"
)

// Metric names read from statekeeper's /metrics. client_golang's Go and
// process collectors export the first ones; controller-runtime the others.
const (
	metricGCCount      = "go_gc_duration_seconds" // a summary: its count is the number of GCs
	metricGOGC         = "go_gc_gogc_percent"
	metricHeapGoal     = "go_memstats_next_gc_bytes"
	metricStackInuse   = "go_memstats_stack_inuse_bytes"
	metricHeapInuse    = "go_memstats_heap_inuse_bytes"
	metricHeapAlloc    = "go_memstats_heap_alloc_bytes"
	metricRSS          = "process_resident_memory_bytes"
	metricLeader       = "leader_election_master_status"
	metricReconciles   = "controller_runtime_reconcile_total"
	metricQueueDepth   = "workqueue_depth"
	metricActive       = "controller_runtime_active_workers"
	defaultGOGCPercent = 100
)

// scrape is one reading of /metrics, by family name.
type scrape map[string]*dto.MetricFamily

// parseScrape reads the Prometheus text format.
func parseScrape(r io.Reader) (scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	return scrape(families), nil
}

// value sums the series of family name whose labels include every pair of
// match (so a nil match sums them all); for a summary it sums the sample
// counts. ok is false when no series matched.
func (s scrape) value(name string, match map[string]string) (sum float64, ok bool) {
	family, found := s[name]
	if !found {
		return 0, false
	}
	for _, m := range family.GetMetric() {
		if !hasLabels(m, match) {
			continue
		}
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		default:
			continue
		}
		ok = true
	}
	return sum, ok
}

func hasLabels(m *dto.Metric, match map[string]string) bool {
	found := 0
	for _, pair := range m.GetLabel() {
		if want, ok := match[pair.GetName()]; ok {
			if pair.GetValue() != want {
				return false
			}
			found++
		}
	}
	return found == len(match)
}

// memory is what the process holds at one moment, in bytes.
type memory struct {
	// LiveHeap is the heap the last GC found reachable: the caches and
	// everything else that lives, without the garbage in between GCs.
	LiveHeap float64
	// HeapInuse and HeapAlloc are the runtime's heap statistics at the
	// moment of the scrape (live heap plus not yet collected garbage).
	HeapInuse float64
	HeapAlloc float64
	// RSS is the resident set size the kernel reports.
	RSS float64
}

// memoryOf reads memory from a scrape.
//
// The live heap is not exported, but the GC's heap goal is, and the runtime
// sets it from the heap the last GC marked: goal = live + (live + stacks +
// globals) × GOGC/100. Solving for live with the stacks in use (globals are a
// few hundred KiB and cancel out of every difference) gives the live heap
// after the last GC, whenever the scrape happens.
func memoryOf(s scrape) (memory, error) {
	var missing []string
	get := func(name string) float64 {
		v, ok := s.value(name, nil)
		if !ok {
			missing = append(missing, name)
		}
		return v
	}
	goal, stacks := get(metricHeapGoal), get(metricStackInuse)
	m := memory{HeapInuse: get(metricHeapInuse), HeapAlloc: get(metricHeapAlloc), RSS: get(metricRSS)}
	if len(missing) > 0 {
		return memory{}, fmt.Errorf("metrics missing from /metrics: %v", missing)
	}
	gogc, ok := s.value(metricGOGC, nil)
	if !ok {
		gogc = defaultGOGCPercent
	}
	if gogc <= 0 {
		return memory{}, fmt.Errorf("GOGC is %v: the heap goal says nothing about the live heap", gogc)
	}
	ratio := gogc / 100
	m.LiveHeap = (goal - ratio*stacks) / (1 + ratio)
	return m, nil
}

// medianMemory is the median of each field over samples.
func medianMemory(samples []memory) memory {
	field := func(get func(memory) float64) float64 {
		values := make([]float64, len(samples))
		for i, s := range samples {
			values[i] = get(s)
		}
		return stats.Median(values)
	}
	return memory{
		LiveHeap:  field(func(m memory) float64 { return m.LiveHeap }),
		HeapInuse: field(func(m memory) float64 { return m.HeapInuse }),
		HeapAlloc: field(func(m memory) float64 { return m.HeapAlloc }),
		RSS:       field(func(m memory) float64 { return m.RSS }),
	}
}

// metricsClient reads a process's /metrics.
type metricsClient struct {
	url  string
	http *http.Client
}

func (c metricsClient) scrape(ctx context.Context) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	return parseScrape(resp.Body)
}

// errNoGC says the process ran no GC within the time allowed.
var errNoGC = errors.New("no garbage collection happened")

// afterGCs returns the memory read right after each of the next n garbage
// collections. Nothing can force a GC in another process, but every scrape
// allocates a little in it, so scraping in a loop brings the next GC within
// seconds; the runtime forces one every two minutes anyway. The scrapes leave
// only garbage, so they do not change the live heap being measured.
func (c metricsClient) afterGCs(ctx context.Context, n int, timeoutEach time.Duration) ([]memory, error) {
	first, err := c.scrape(ctx)
	if err != nil {
		return nil, err
	}
	lastCount, ok := first.value(metricGCCount, nil)
	if !ok {
		return nil, fmt.Errorf("%s missing from /metrics", metricGCCount)
	}
	var out []memory
	deadline := time.Now().Add(timeoutEach)
	for len(out) < n {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%w in %s", errNoGC, timeoutEach)
		}
		s, err := c.scrape(ctx)
		if err != nil {
			return out, err
		}
		count, _ := s.value(metricGCCount, nil)
		if count == lastCount {
			continue
		}
		m, err := memoryOf(s)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		lastCount = count
		deadline = time.Now().Add(timeoutEach)
	}
	return out, nil
}
