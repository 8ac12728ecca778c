package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
	admissionv1 "k8s.io/api/admission/v1"
)

// target is one server under load.
type target struct {
	name string
	url  string
	// checkReview says the answer must be an AdmissionReview for the
	// request's uid (every server but the no-op TLS one, which answers a
	// constant).
	checkReview bool
	// statekeeper says the target is statekeeper (it can be profiled).
	statekeeper bool
	// pid is the server's process, whose CPU time is read per run.
	pid int
}

// loader sends one body to one target over a fixed number of keep-alive
// HTTPS connections, each used by one sender in a closed loop (a request is
// sent when the previous answer has been read), as the API server's
// connection pool to a webhook does under load.
type loader struct {
	roots       *x509.CertPool
	connections int
	warmup      time.Duration
	duration    time.Duration
}

// outcome is one measurement: answers per second after the warm-up, the
// server's CPU time per answer meanwhile, and the answers that were not 200.
// On two cores the load generator competes with the server and the rate
// moves with whatever else runs; the CPU time per answer is the server's
// own cost, steadier under a shared machine.
type outcome struct {
	perSecond    float64
	cpuPerAnswer time.Duration
	failed       int64
}

// newClient is one connection: a transport that keeps at most one open.
func (l loader) newClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: l.roots, MinVersion: tls.VersionTLS12},
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// check sends body once and verifies the answer is what the target should
// say, so that a broken server is not measured as a fast one.
func (l loader) check(ctx context.Context, t target, b body) (*admissionv1.AdmissionResponse, error) {
	client := l.newClient()
	defer client.CloseIdleConnections()
	status, answer, err := post(ctx, client, t.url, b.json)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %s", t.name, status, answer)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(answer, &review); err != nil || review.Response == nil {
		return nil, fmt.Errorf("%s answered no AdmissionReview (%v): %s", t.name, err, answer)
	}
	if t.checkReview && review.Response.UID != requestUID {
		return nil, fmt.Errorf("%s answered for uid %q, want %q", t.name, review.Response.UID, requestUID)
	}
	if t.checkReview && review.Response.Result != nil && review.Response.Result.Code >= 500 {
		return nil, fmt.Errorf("%s failed the request: %s", t.name, review.Response.Result.Message)
	}
	return review.Response, nil
}

// run loads t with b for the warm-up and the measured duration. It stops by
// itself after warmup+duration (plus one request timeout at most).
func (l loader) run(ctx context.Context, t target, b body) (outcome, error) {
	var answered, failed atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithTimeout(ctx, l.warmup+l.duration)
	defer cancel()
	var wg sync.WaitGroup
	for range l.connections {
		client := l.newClient()
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				status, _, err := post(ctx, client, t.url, b.json)
				switch {
				case err != nil && ctx.Err() != nil:
					return // the run ended mid-request
				case err != nil:
					once.Do(func() { firstErr = err })
					failed.Add(1)
				case status != http.StatusOK:
					failed.Add(1)
				default:
					answered.Add(1)
				}
			}
		})
	}
	if err := sleep(ctx, l.warmup); err != nil {
		wg.Wait()
		return outcome{}, err
	}
	startCPU, err := processCPU(t.pid)
	if err != nil {
		wg.Wait()
		return outcome{}, err
	}
	start, startCount, startFailed := time.Now(), answered.Load(), failed.Load()
	<-ctx.Done()
	took, count, nFailed := time.Since(start), answered.Load()-startCount, failed.Load()-startFailed
	endCPU, err := processCPU(t.pid)
	wg.Wait()
	if err != nil {
		return outcome{}, err
	}
	if firstErr != nil && count == 0 {
		return outcome{}, fmt.Errorf("%s: %w", t.name, firstErr)
	}
	out := outcome{perSecond: float64(count) / took.Seconds(), failed: nFailed}
	if count > 0 {
		out.cpuPerAnswer = (endCPU - startCPU) / time.Duration(count)
	}
	return out, nil
}

func post(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// sleep waits d, or less when ctx ends first (that is no error here: the
// run's own deadline may come first).
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil
		}
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// processCPU is the user and system CPU time pid has used, all its threads.
func processCPU(pid int) (time.Duration, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	stat, err := proc.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(stat.CPUTime() * float64(time.Second)), nil
}
