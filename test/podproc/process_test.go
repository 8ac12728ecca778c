package podproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childMode, when set, makes the test binary the child these tests start.
const childMode = "PODPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childMode); mode != "" {
		os.Exit(runChild(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runChild plays the program under test: "echo" prints its arguments and
// exits 0, "fail" exits 3, "serve" answers /readyz at its first argument
// until SIGTERM, "stubborn" does so and ignores SIGTERM.
func runChild(mode string, args []string) int {
	switch mode {
	case "echo":
		fmt.Println(args)
		return 0
	case "fail":
		return 3
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	}()
	for range terms {
		if mode == "serve" {
			return 0
		}
	}
	return 1
}

// child is a Command running this test binary in mode.
func child(t *testing.T, mode string, args ...string) Command {
	self, err := os.Executable()
	require.NoError(t, err)
	return Command{
		Name:   mode,
		Binary: self,
		Args:   args,
		// The race detector's exit would wait a second.
		Env: []string{childMode + "=" + mode, "GORACE=atexit_sleep_ms=0"},
		Log: filepath.Join(t.TempDir(), mode+".log"),
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func TestLogHoldsEveryRunUnderItsCommandLine(t *testing.T) {
	c := child(t, "echo", "a", "b")
	for range 2 {
		p, err := Start(c)
		require.NoError(t, err)
		<-p.Done()
	}
	log, err := os.ReadFile(c.Log)
	require.NoError(t, err)
	stamp := regexp.MustCompile(`(?m)^=== \S+ `)
	header := "=== TIME " + c.Binary + " a b\n"
	assert.Equal(t, "\n"+header+"[a b]\n\n"+header+"[a b]\n", stamp.ReplaceAllString(string(log), "=== TIME "))
}

func TestReadyProcessStopsOnSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	p, err := Start(child(t, "serve", addr))
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	require.NoError(t, p.WaitReady(context.Background(), "http://"+addr+"/readyz", time.Minute))
	assert.NoError(t, p.Exited())

	require.NoError(t, p.Stop(time.Minute))
	assert.EqualError(t, p.Exited(), fmt.Sprintf("serve exited (exit status 0; log %s)", p.log))
	assert.NoError(t, p.Stop(time.Minute), "stopping a stopped process")
}

func TestStopKillsAfterTheGracePeriod(t *testing.T) {
	addr := freeAddr(t)
	p, err := Start(child(t, "stubborn", addr))
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	// Ready means the child listens, and so has installed its SIGTERM handler.
	require.NoError(t, p.WaitReady(context.Background(), "http://"+addr+"/readyz", time.Minute))

	err = p.Stop(100 * time.Millisecond)
	assert.EqualError(t, err, fmt.Sprintf("stubborn did not stop within 100ms of SIGTERM; killed it (log %s)", p.log))
	assert.EqualError(t, p.Exited(), fmt.Sprintf("stubborn exited (signal: killed; log %s)", p.log))
}

func TestWaitReadyReportsAnExit(t *testing.T) {
	p, err := Start(child(t, "fail"))
	require.NoError(t, err)
	err = p.WaitReady(context.Background(), "http://"+freeAddr(t)+"/readyz", time.Minute)
	assert.ErrorIs(t, err, ErrExited)
	assert.EqualError(t, err, fmt.Sprintf("fail exited (exit status 3; log %s)", p.log))
}

func TestWaitReadyTimesOutWithTheLastAnswer(t *testing.T) {
	addr := freeAddr(t) // nothing listens there
	p, err := Start(child(t, "stubborn", freeAddr(t)))
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	err = p.WaitReady(context.Background(), "http://"+addr+"/readyz", 300*time.Millisecond)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Regexp(t, `^waiting for stubborn to be ready \(log .*\): context deadline exceeded \(last: .*connection refused\)$`, err.Error())
}

func TestFreshLogRemovesEarlierRuns(t *testing.T) {
	log := filepath.Join(t.TempDir(), "server.log")
	require.NoError(t, os.WriteFile(log, []byte("an earlier run\n"), 0o600))
	require.NoError(t, FreshLog(log))
	assert.NoFileExists(t, log)
	assert.NoError(t, FreshLog(log), "no log yet")
}
