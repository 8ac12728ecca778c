package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeManager records the context it runs with and returns result once that
// context is done.
type fakeManager struct {
	ctx     chan context.Context
	result  error
	stopped chan struct{}
}

func (m *fakeManager) Start(ctx context.Context) error {
	m.ctx <- ctx
	<-ctx.Done()
	close(m.stopped)
	return m.result
}

func TestShutdownDrainsBeforeTheManagerStops(t *testing.T) {
	d := &drain{}
	m := &fakeManager{ctx: make(chan context.Context, 1), result: errors.New("manager result"), stopped: make(chan struct{})}
	drained := make(chan time.Time)
	var asked time.Duration
	after := func(period time.Duration) <-chan time.Time { asked = period; return drained }

	ctx, signal := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- runWithDrain(ctx, m, d, 5*time.Second, after, logr.Discard()) }()
	managerCtx := <-m.ctx

	require.NoError(t, d.readyz()(nil), "ready before the signal")
	signal()
	require.Eventually(t, func() bool { return d.readyz()(nil) != nil }, 10*time.Second, time.Millisecond, "readiness fails on the signal")
	assert.EqualError(t, d.readyz()(nil), "shutting down")
	assert.NoError(t, managerCtx.Err(), "the manager keeps running while draining")
	select {
	case err := <-result:
		t.Fatalf("returned while draining: %v", err)
	default:
	}

	drained <- time.Time{}
	<-m.stopped
	assert.EqualError(t, <-result, "manager result", "the manager's own result")
	assert.Equal(t, 5*time.Second, asked)
}

func TestShutdownWithoutDrainStopsAtOnce(t *testing.T) {
	d := &drain{}
	m := &fakeManager{ctx: make(chan context.Context, 1), stopped: make(chan struct{})}
	after := func(time.Duration) <-chan time.Time { t.Error("no drain period expected"); return nil }
	ctx, signal := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- runWithDrain(ctx, m, d, 0, after, logr.Discard()) }()
	<-m.ctx
	signal()
	require.NoError(t, <-result)
}

// TestDrainClosesKeepAliveConnections: before the drain a client reuses its
// connection; once draining, each answer closes the connection it came on,
// so the client dials again for the next request, and the request itself
// is still answered.
func TestDrainClosesKeepAliveConnections(t *testing.T) {
	d := &drain{}
	srv := httptest.NewServer(d.closeWhileDraining(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "answered")
	})))
	defer srv.Close()
	client := srv.Client()

	type result struct {
		reused bool
		close  bool
		body   string
	}
	call := func() result {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodPost, srv.URL, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return result{reused: reused, close: resp.Close, body: string(body)}
	}

	assert.Equal(t, result{reused: false, body: "answered"}, call())
	assert.Equal(t, result{reused: true, body: "answered"}, call(), "keep-alive before the drain")
	d.begin()
	assert.Equal(t, result{reused: true, close: true, body: "answered"}, call(), "the open connection is answered, then closed")
	assert.Equal(t, result{reused: false, close: true, body: "answered"}, call(), "the next request comes on a new connection")
}
