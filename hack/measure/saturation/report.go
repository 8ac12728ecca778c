package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/statekeeper/statekeeper/hack/measure/internal/stats"
)

// key names one server and body.
type key struct{ target, body string }

// result is everything one run measured.
type result struct {
	options   options
	bodies    []body
	targets   []target
	decisions map[key]string
	runs      map[key][]outcome
}

// describe says what a server answered, for the report.
func describe(r *admissionv1.AdmissionResponse) string {
	switch {
	case !r.Allowed && r.Result != nil:
		return fmt.Sprintf("denied (%d)", r.Result.Code)
	case r.Patch != nil:
		return fmt.Sprintf("allowed, patched (%d bytes of JSON patch)", len(r.Patch))
	case len(r.Warnings) > 0:
		return fmt.Sprintf("allowed, %d warnings", len(r.Warnings))
	default:
		return "allowed"
	}
}

// report prints the run as Markdown, ready for docs/performance.md. The
// ratio of a server is the median over rounds of its rate divided by the
// no-op TLS server's rate of the same round and body: the rounds interleave
// the servers, so a round's ratio compares moments of the same machine load.
func report(w io.Writer, r result) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	o := r.options
	p("## Handler saturation")
	p("")
	p("Measured %s: %d keep-alive HTTPS connections on loopback, each one request at a time; %d rounds, "+
		"each server and body loaded for %s after a %s warm-up; answers per second are the median over the "+
		"rounds (lowest–highest in brackets), ratios the median of each round's rate over the no-op TLS server's. "+
		"The server's CPU per answer is its process's user and system time over the answers of the run; the CPU-time "+
		"ratio is the no-op TLS server's CPU per answer over this server's, the same round's (1.00 costs as much, "+
		"0.50 twice as much).",
		time.Now().UTC().Format(time.DateTime+" MST"), o.connections, o.rounds, o.duration, o.warmup)
	p("")
	baseline := r.targets[0].name
	p("| body | server | answer | answers/s | ratio to %s | server CPU per answer | CPU-time ratio | failed |", baseline)
	p("|---|---|---|--:|--:|--:|--:|--:|")
	for _, b := range r.bodies {
		base := r.runs[key{baseline, b.name}]
		for _, t := range r.targets {
			runs := r.runs[key{t.name, b.name}]
			rates, ratios := make([]float64, len(runs)), make([]float64, len(runs))
			cpus, cpuRatios := make([]float64, len(runs)), make([]float64, len(runs))
			var failed int64
			for i, run := range runs {
				rates[i] = run.perSecond
				ratios[i] = run.perSecond / base[i].perSecond
				cpus[i] = float64(run.cpuPerAnswer.Nanoseconds()) / 1e3
				cpuRatios[i] = float64(base[i].cpuPerAnswer) / float64(run.cpuPerAnswer)
				failed += run.failed
			}
			p("| %s | %s | %s | %s (%s–%s) | %.2f | %.0f µs (%.0f–%.0f) | %.2f | %d |", b.name, t.name, r.decisions[key{t.name, b.name}],
				thousands(stats.Median(rates)), thousands(slices.Min(rates)), thousands(slices.Max(rates)), stats.Median(ratios),
				stats.Median(cpus), slices.Min(cpus), slices.Max(cpus), stats.Median(cpuRatios), failed)
		}
	}
}

// thousands formats a rate as 12,345.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
