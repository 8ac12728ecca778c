// Package command is how the measurement programs end: the one place that
// turns a run's error into an exit status, and that stops a run on SIGINT or
// SIGTERM.
package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Run runs fn with a context that ends on SIGINT or SIGTERM, then exits as
// Exit does.
func Run(name string, fn func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	Exit(name, err)
}

// Exit ends the program: status 0, or 1 with "name: err" on stderr.
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}
