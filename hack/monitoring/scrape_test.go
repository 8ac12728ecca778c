package monitoring

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// scraper does what a Prometheus scrape of one target does to its storage:
// the target's samples with the target's labels, up 1, and a staleness
// marker for every series that is gone; when the scrape fails, up 0 and
// every series of the target stale.
type scraper struct {
	url string
	db  storage.Appendable
	// target are the labels prometheus-operator gives a ServiceMonitor's
	// target; a scraped label of the same name becomes exported_<name>
	// (honor_labels: false).
	target map[string]string
	// live are the series of the last successful scrape, by their labels.
	live map[string]labels.Labels
}

func newScraper(url string, db storage.Appendable, target map[string]string) *scraper {
	return &scraper{url: url, db: db, target: target, live: map[string]labels.Labels{}}
}

// sample is one series' value in a scrape.
type sample struct {
	labels labels.Labels
	value  float64
}

// scrape scrapes the target as if at ts, and returns the names of the
// samples it exposed (nil when the scrape failed).
func (s *scraper) scrape(ctx context.Context, ts time.Time) (map[string]bool, error) {
	samples, scrapeErr := s.fetch(ctx)
	app := s.db.Appender(ctx)
	t := ts.UnixMilli()
	up := 1.0
	if scrapeErr != nil {
		up = 0
	}
	names := map[string]bool{}
	now := map[string]labels.Labels{}
	for _, smp := range samples {
		if _, err := app.Append(0, smp.labels, t, smp.value); err != nil {
			return nil, err
		}
		now[smp.labels.String()] = smp.labels
		names[smp.labels.Get(labels.MetricName)] = true
	}
	for key, l := range s.live {
		if _, ok := now[key]; !ok {
			if _, err := app.Append(0, l, t, math.Float64frombits(value.StaleNaN)); err != nil {
				return nil, err
			}
		}
	}
	s.live = now
	if _, err := app.Append(0, s.withTarget(map[string]string{labels.MetricName: "up"}), t, up); err != nil {
		return nil, err
	}
	if err := app.Commit(); err != nil {
		return nil, err
	}
	if scrapeErr != nil {
		return nil, nil
	}
	return names, nil
}

func (s *scraper) fetch(ctx context.Context) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []sample
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, smp := range expand(name, f.GetType(), m) {
				out = append(out, sample{labels: s.withTarget(smp.labels), value: smp.value})
			}
		}
	}
	return out, nil
}

func (s *scraper) withTarget(l map[string]string) labels.Labels {
	out := map[string]string{}
	for k, v := range l {
		if _, clash := s.target[k]; clash {
			k = "exported_" + k
		}
		out[k] = v
	}
	for k, v := range s.target {
		out[k] = v
	}
	return labels.FromMap(out)
}

// rawSample is a sample of the exposition before the target's labels.
type rawSample struct {
	labels map[string]string
	value  float64
}

// expand turns one metric of a family into the samples Prometheus stores:
// a histogram is its cumulative _bucket series, _sum and _count.
func expand(name string, typ dto.MetricType, m *dto.Metric) []rawSample {
	with := func(suffix string, extra map[string]string, v float64) rawSample {
		l := map[string]string{labels.MetricName: name + suffix}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		for k, val := range extra {
			l[k] = val
		}
		return rawSample{labels: l, value: v}
	}
	switch typ {
	case dto.MetricType_COUNTER:
		return []rawSample{with("", nil, m.GetCounter().GetValue())}
	case dto.MetricType_GAUGE:
		return []rawSample{with("", nil, m.GetGauge().GetValue())}
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		out := []rawSample{
			with("_sum", nil, h.GetSampleSum()),
			with("_count", nil, float64(h.GetSampleCount())),
			with("_bucket", map[string]string{"le": "+Inf"}, float64(h.GetSampleCount())),
		}
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			le := strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64)
			out = append(out, with("_bucket", map[string]string{"le": le}, float64(b.GetCumulativeCount())))
		}
		return out
	case dto.MetricType_SUMMARY:
		sm := m.GetSummary()
		out := []rawSample{with("_sum", nil, sm.GetSampleSum()), with("_count", nil, float64(sm.GetSampleCount()))}
		for _, q := range sm.GetQuantile() {
			out = append(out, with("", map[string]string{"quantile": strconv.FormatFloat(q.GetQuantile(), 'f', -1, 64)}, q.GetValue()))
		}
		return out
	default:
		return []rawSample{with("", nil, m.GetUntyped().GetValue())}
	}
}
