package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exposition is a trimmed /metrics answer of statekeeper serve.
const exposition = `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds{quantile="1"} 0.000312
go_gc_duration_seconds_sum 0.0041
go_gc_duration_seconds_count 42
# TYPE go_gc_gogc_percent gauge
go_gc_gogc_percent 100
# TYPE go_memstats_next_gc_bytes gauge
go_memstats_next_gc_bytes 2.1e+07
# TYPE go_memstats_stack_inuse_bytes gauge
go_memstats_stack_inuse_bytes 1e+06
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.5e+07
# TYPE go_memstats_heap_alloc_bytes gauge
go_memstats_heap_alloc_bytes 1.2e+07
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 6e+07
# TYPE leader_election_master_status gauge
leader_election_master_status{name="statekeeper.statekeeper.io"} 1
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="headless-service",result="success"} 990
controller_runtime_reconcile_total{controller="headless-service",result="error"} 10
controller_runtime_reconcile_total{controller="other",result="success"} 5
`

func TestScrapeValue(t *testing.T) {
	s, err := parseScrape(strings.NewReader(exposition))
	require.NoError(t, err)

	tests := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
		wantOK bool
	}{
		{"a gauge", metricHeapInuse, nil, 15e6, true},
		{"a summary counts its samples", metricGCCount, nil, 42, true},
		{"a counter summed over the series that match", metricReconciles, map[string]string{"controller": "headless-service"}, 1000, true},
		{"a counter summed over every series", metricReconciles, nil, 1005, true},
		{"a label value that differs", metricReconciles, map[string]string{"controller": "none"}, 0, false},
		{"a label the series lack", "leader_election_master_status", map[string]string{"namespace": "x"}, 0, false},
		{"the leader's Lease", "leader_election_master_status", map[string]string{"name": "statekeeper.statekeeper.io"}, 1, true},
		{"a missing family", "nothing_here", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.value(tt.metric, tt.match)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMemoryOf(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(exposition, old, new, 1) }
	tests := []struct {
		name    string
		text    string
		want    memory
		wantErr string
	}{
		{
			// goal = live + (live + stacks) × 1: (21e6 − 1e6) / 2
			name: "GOGC 100",
			text: exposition,
			want: memory{LiveHeap: 10e6, HeapInuse: 15e6, HeapAlloc: 12e6, RSS: 60e6},
		},
		{
			// goal = live + (live + stacks) × 0.5: (21e6 − 0.5e6) / 1.5
			name: "GOGC 50",
			text: replace("go_gc_gogc_percent 100", "go_gc_gogc_percent 50"),
			want: memory{LiveHeap: 20.5e6 / 1.5, HeapInuse: 15e6, HeapAlloc: 12e6, RSS: 60e6},
		},
		{
			name: "GOGC not exported: the default",
			text: replace("go_gc_gogc_percent 100", ""),
			want: memory{LiveHeap: 10e6, HeapInuse: 15e6, HeapAlloc: 12e6, RSS: 60e6},
		},
		{
			name:    "GC off",
			text:    replace("go_gc_gogc_percent 100", "go_gc_gogc_percent -1"),
			wantErr: "GOGC is -1: the heap goal says nothing about the live heap",
		},
		{
			name:    "no RSS (not Linux)",
			text:    replace("process_resident_memory_bytes 6e+07", ""),
			wantErr: "metrics missing from /metrics: [process_resident_memory_bytes]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseScrape(strings.NewReader(tt.text))
			require.NoError(t, err)
			got, err := memoryOf(s)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.want.LiveHeap, got.LiveHeap, 1e-6)
			got.LiveHeap = tt.want.LiveHeap
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMedianMemory(t *testing.T) {
	tests := []struct {
		name    string
		samples []memory
		want    memory
	}{
		{"none", nil, memory{}},
		{"one", []memory{{1, 2, 3, 4}}, memory{1, 2, 3, 4}},
		{"odd: each field's middle value", []memory{{5, 1, 9, 2}, {1, 3, 7, 8}, {3, 2, 8, 5}}, memory{3, 2, 8, 5}},
		{"even: the mean of the two middle values", []memory{{4, 1, 1, 1}, {1, 1, 1, 1}, {2, 3, 1, 1}, {3, 3, 1, 1}}, memory{2.5, 2, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, medianMemory(tt.samples))
		})
	}
}
