package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/statekeeper/statekeeper/hack/measure/internal/stats"
)

// saveRegistrations keeps the configurations of the chart's names that
// exist before the run (hack/run.sh's, say) and returns what puts them back.
func saveRegistrations(ctx context.Context, kube kubernetes.Interface, regs registrations) (func(context.Context) error, error) {
	m, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, regs.mutating.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		m, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, regs.validating.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		v, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if m != nil {
			_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, fresh(m), metav1.CreateOptions{})
			if err != nil {
				return err
			}
		}
		if v != nil {
			_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, fresh(v), metav1.CreateOptions{})
			return err
		}
		return nil
	}, nil
}

// fresh is a stored object as it can be created again.
func fresh[T *admissionregistrationv1.MutatingWebhookConfiguration | *admissionregistrationv1.ValidatingWebhookConfiguration](obj T) T {
	var meta *metav1.ObjectMeta
	switch o := any(obj).(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		meta = &o.ObjectMeta
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		meta = &o.ObjectMeta
	}
	*meta = metav1.ObjectMeta{Name: meta.Name, Labels: meta.Labels, Annotations: meta.Annotations}
	return obj
}

// summary is one variant over its rounds.
type summary struct {
	burstWall, rolloutWall             time.Duration // medians over the rounds
	burstP50, burstP99, mixP50, mixP99 time.Duration // over every write of the rounds
	rolloutP50, rolloutP99             time.Duration
	cpuPer1000                         time.Duration
	admissions                         float64
	failures                           int
	firstErr                           error
}

func summarize(rounds []roundResult) summary {
	var s summary
	var walls, rolloutWalls []float64
	var burst, mix, rollout []time.Duration
	var cpu time.Duration
	for _, r := range rounds {
		walls = append(walls, float64(r.burst.wall))
		rolloutWalls = append(rolloutWalls, float64(r.rollout.wall))
		burst = append(burst, r.burst.latencies...)
		mix = append(mix, r.mix.latencies...)
		rollout = append(rollout, r.rollout.latencies...)
		cpu += r.cpu
		s.admissions += r.admissions
		for _, w := range []*writes{r.burst, r.mix, r.rollout} {
			s.failures += w.failures
			if s.firstErr == nil {
				s.firstErr = w.firstErr
			}
		}
	}
	s.burstWall, s.rolloutWall = time.Duration(stats.Median(walls)), time.Duration(stats.Median(rolloutWalls))
	s.rolloutP50, s.rolloutP99 = quantile(rollout, 0.50), quantile(rollout, 0.99)
	s.burstP50, s.burstP99 = quantile(burst, 0.50), quantile(burst, 0.99)
	s.mixP50, s.mixP99 = quantile(mix, 0.50), quantile(mix, 0.99)
	if s.admissions > 0 {
		s.cpuPer1000 = time.Duration(float64(cpu) / s.admissions * 1000)
	}
	return s
}

// quantile is the nearest-rank q-quantile of d.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func plus(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

func report(o options, variants []variant, results map[string][]roundResult) string {
	sums := map[string]summary{}
	for _, v := range variants {
		sums[v.name] = summarize(results[v.name])
	}
	none, same := sums["no webhook"], sums["same-patch no-op"]
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Burst: %d managed (stateless-multi, paused) Deployment creates, %d in flight. Mix: %d writes/s for %s "+
		"(Deployment CREATE, UPDATE, deployments/scale, CREATE of a StatefulSet's pod, in turn). %d rounds per variant, interleaved. "+
		"Latencies in ms over every write of the rounds; burst wall time the median of the rounds; "+
		"CPU of the webhook process per 1,000 admissions over the whole rounds.",
		o.burst, o.concurrency, o.mixRate, o.mixDuration, o.rounds)
	p("")
	p("| variant | burst wall (s) | per round (s) | × same-patch per round | burst p50 | burst p99 | mix p50 | mix p99 | burst p50 / p99 vs no webhook | burst p50 / p99 vs same-patch | CPU ms / 1,000 admissions | failed writes |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, v := range variants {
		s := sums[v.name]
		cpu := "–"
		if v.server != nil {
			cpu = ms(s.cpuPer1000)
		}
		var walls, ratios []string
		for i, r := range results[v.name] {
			walls = append(walls, fmt.Sprintf("%.1f", r.burst.wall.Seconds()))
			ratios = append(ratios, fmt.Sprintf("%.2f", float64(r.burst.wall)/float64(results["same-patch no-op"][i].burst.wall)))
		}
		p("| %s | %.2f | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %d |", v.name,
			s.burstWall.Seconds(), strings.Join(walls, ", "), strings.Join(ratios, ", "),
			ms(s.burstP50), ms(s.burstP99), ms(s.mixP50), ms(s.mixP99),
			plus(s.burstP50-none.burstP50), plus(s.burstP99-none.burstP99),
			plus(s.burstP50-same.burstP50), plus(s.burstP99-same.burstP99),
			cpu, s.failures)
	}
	p("")
	p("Rollout: an image bump (strategic merge patch) of each of the %d burst Deployments, %d in flight.", o.burst, o.concurrency)
	p("")
	p("| variant | rollout wall (s) | per round (s) | p50 | p99 | p50 / p99 vs no webhook |")
	p("|---|---|---|---|---|---|")
	for _, v := range variants {
		s := sums[v.name]
		var walls []string
		for _, r := range results[v.name] {
			walls = append(walls, fmt.Sprintf("%.1f", r.rollout.wall.Seconds()))
		}
		p("| %s | %.2f | %s | %s | %s | %s / %s |", v.name, s.rolloutWall.Seconds(), strings.Join(walls, ", "),
			ms(s.rolloutP50), ms(s.rolloutP99), plus(s.rolloutP50-none.rolloutP50), plus(s.rolloutP99-none.rolloutP99))
	}
	for _, v := range variants {
		if s := sums[v.name]; s.firstErr != nil {
			p("")
			p("%s: first failed write: %v", v.name, s.firstErr)
		}
	}
	return b.String()
}
