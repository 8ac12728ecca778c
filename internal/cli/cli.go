// Package cli is statekeeper's command line: the `serve`, `check`, `audit`
// and `version` subcommands, their flags (see internal/config) and exit codes.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/statekeeper/statekeeper/internal/config"
)

// Exit codes shared by every subcommand.
const (
	ExitOK = 0
	// ExitFailure: the command ran and failed (server error, a denied manifest).
	ExitFailure = 1
	// ExitUsage: the command could not run (unknown command or flag, bad
	// configuration, unreadable input).
	ExitUsage = 2
)

// streams is what a subcommand may touch of the process.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, s streams) int
}

func commands() []command {
	return []command{
		{name: "serve", summary: "run the admission webhook server and the headless-Service reconciler", run: runServe},
		{name: "check", summary: "check manifests offline with the same mutations and rules as the server", run: runCheck},
		{name: "audit", summary: "audit what a live cluster already stores by the same rules (read-only)", run: runAudit},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

// Main runs statekeeper with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(args, streams{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv})
}

func run(args []string, s streams) int {
	if len(args) == 0 {
		writeUsage(s.stderr)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		if len(rest) == 0 {
			writeUsage(s.stdout)
			return ExitOK
		}
		// "statekeeper help serve" is "statekeeper serve --help".
		name, rest = rest[0], []string{"--help"}
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(rest, s)
		}
	}
	fmt.Fprintf(s.stderr, "error: unknown command %q\n\n", name)
	writeUsage(s.stderr)
	return ExitUsage
}

func writeUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("statekeeper gives Kubernetes workloads a deploy type (stateful or stateless, single or\n")
	b.WriteString("multi instance) and enforces it as an admission webhook.\n\n")
	b.WriteString("Usage:\n  statekeeper <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-8s %s\n", "help", "show the help of a command")
	b.WriteString("\nRun \"statekeeper <command> --help\" for the flags of a command.\n")
	fmt.Fprint(w, b.String())
}

// commandHelp is the --help text of one subcommand.
type commandHelp struct {
	usage       string // after "statekeeper "
	description string
}

// parseFlags parses args into fs and then fills unset flags from their
// environment twins. done is true when the command must return code now
// (after --help, or on a usage error, which it has reported).
func parseFlags(fs *pflag.FlagSet, args []string, help commandHelp, s streams) (code int, done bool) {
	fs.SetOutput(io.Discard) // errors and help are written below, once
	fs.SortFlags = false     // flags in the order they were bound: grouped by topic
	printHelp := func(w io.Writer) {
		fmt.Fprintf(w, "Usage:\n  statekeeper %s\n\n%s\n", help.usage, help.description)
		if flags := fs.FlagUsages(); flags != "" {
			fmt.Fprintf(w, "\nFlags:\n%s", flags)
		}
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		printHelp(s.stdout)
		return ExitOK, true
	case err != nil:
		fmt.Fprintf(s.stderr, "error: %v\nRun \"statekeeper %s --help\" for usage.\n", err, commandName(help))
		return ExitUsage, true
	}
	if err := config.ApplyEnv(fs, s.lookupEnv); err != nil {
		fmt.Fprintf(s.stderr, "error: %v\n", err)
		return ExitUsage, true
	}
	return ExitOK, false
}

func commandName(h commandHelp) string {
	name, _, _ := strings.Cut(h.usage, " ")
	return name
}

func newFlagSet(name string) *pflag.FlagSet {
	return pflag.NewFlagSet("statekeeper "+name, pflag.ContinueOnError)
}

// reportProblems writes a command's usage problems and its configuration's
// invalid settings (invalid, nil when none), one "error:" line each, and
// reports whether there were any.
func reportProblems(s streams, command string, problems []string, invalid error) bool {
	if invalid != nil {
		problems = append(problems, strings.Split(invalid.Error(), "\n")...)
	}
	if len(problems) == 0 {
		return false
	}
	for _, p := range problems {
		fmt.Fprintf(s.stderr, "error: %s\n", p)
	}
	fmt.Fprintf(s.stderr, "Run \"statekeeper %s --help\" for usage.\n", command)
	return true
}
