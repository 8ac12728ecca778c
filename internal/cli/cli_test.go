package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type result struct {
	code           int
	stdout, stderr string
}

func runWith(args []string, env map[string]string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, streams{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		lookupEnv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

const usage = `statekeeper gives Kubernetes workloads a deploy type (stateful or stateless, single or
multi instance) and enforces it as an admission webhook.

Usage:
  statekeeper <command> [flags]

Commands:
  serve    run the admission webhook server and the headless-Service reconciler
  check    check manifests offline with the same mutations and rules as the server
  audit    audit what a live cluster already stores by the same rules (read-only)
  version  print the version
  help     show the help of a command

Run "statekeeper <command> --help" for the flags of a command.
`

func TestCommands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want result
	}{
		{name: "help", args: []string{"help"}, want: result{code: ExitOK, stdout: usage}},
		{name: "--help", args: []string{"--help"}, want: result{code: ExitOK, stdout: usage}},
		{name: "no command", args: nil, want: result{code: ExitUsage, stderr: usage}},
		{
			name: "unknown command",
			args: []string{"frobnicate"},
			want: result{code: ExitUsage, stderr: "error: unknown command \"frobnicate\"\n\n" + usage},
		},
		{
			name: "unknown flag",
			args: []string{"serve", "--webhook-prot=1"},
			want: result{code: ExitUsage, stderr: "error: unknown flag: --webhook-prot\nRun \"statekeeper serve --help\" for usage.\n"},
		},
		{
			name: "serve: arguments",
			args: []string{"serve", "now"},
			want: result{code: ExitUsage, stderr: "error: serve takes no arguments, got [\"now\"]\n"},
		},
		{
			name: "serve: invalid configuration from flags and environment",
			args: []string{"serve", "--webhook-port=0"},
			env:  map[string]string{"STATEKEEPER_LOG_FORMAT": "text"},
			want: result{code: ExitUsage, stderr: "error: invalid configuration:\n" +
				"--webhook-port: port must be between 1 and 65535, got 0\n" +
				"--log-format: unknown log format \"text\": must be \"json\" or \"console\"\n"},
		},
		{
			name: "serve: unusable environment variable",
			args: []string{"serve"},
			env:  map[string]string{"STATEKEEPER_DEFAULT_MODE": "strict"},
			want: result{code: ExitUsage, stderr: "error: STATEKEEPER_DEFAULT_MODE=\"strict\" (--default-mode): unknown mode \"strict\": must be one of \"enforce\", \"warn\", \"audit\", \"off\"\n"},
		},
		{
			name: "serve: certificates missing",
			args: []string{"serve", "--cert-dir=/nonexistent/certs"},
			want: result{code: ExitUsage, stderr: "error: --cert-dir: /nonexistent/certs/tls.crt is missing\n" +
				"--cert-dir: /nonexistent/certs/tls.key is missing\n"},
		},
		{
			name: "check: no input",
			args: []string{"check", "-o", "json"},
			want: result{code: ExitUsage, stderr: "error: no input: give -f FILE, -f DIR or -f - for stdin\n" +
				"error: --output: unknown format \"json\": must be yaml or omitted\n" +
				"Run \"statekeeper check --help\" for usage.\n"},
		},
		{
			name: "check: invalid policy flag",
			args: []string{"check", "-f", "-", "--default-storage-size=0"},
			want: result{code: ExitUsage, stderr: "error: --default-storage-size: storage size must be positive, got \"0\"\n" +
				"Run \"statekeeper check --help\" for usage.\n"},
		},
		{
			name: "audit: unknown format and arguments",
			args: []string{"audit", "-o", "yaml", "now"},
			want: result{code: ExitUsage, stderr: "error: audit takes no arguments, got [\"now\"]\n" +
				"error: --output: unknown format \"yaml\": must be table, json or junit\n" +
				"Run \"statekeeper audit --help\" for usage.\n"},
		},
		{
			name: "audit: no cluster",
			args: []string{"audit", "--kubeconfig", "/nonexistent/kubeconfig"},
			want: result{code: ExitUsage, stderr: "error: --kubeconfig /nonexistent/kubeconfig: stat /nonexistent/kubeconfig: no such file or directory\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, runWith(tt.args, tt.env))
		})
	}
}

func TestVersion(t *testing.T) {
	got := runWith([]string{"version"}, nil)
	assert.Equal(t, ExitOK, got.code)
	assert.Empty(t, got.stderr)
	assert.Regexp(t, `^statekeeper dev( \(commit [0-9a-f]+(-dirty)?\))? go\S+ \w+/\w+\n$`, got.stdout)
}

// TestHelp compares each command's whole --help with a golden file, and checks
// that serve's help names every configuration flag with its environment twin.
func TestHelp(t *testing.T) {
	for _, command := range []string{"serve", "check", "audit", "version"} {
		t.Run(command, func(t *testing.T) {
			got := runWith([]string{command, "--help"}, nil)
			require.Equal(t, ExitOK, got.code, got.stderr)
			assert.Equal(t, got, runWith([]string{"help", command}, nil), `"help <command>" is "<command> --help"`)
			golden(t, filepath.Join("testdata", command+"-help.txt"), got.stdout)
		})
	}

	help := runWith([]string{"serve", "--help"}, nil).stdout
	all := pflag.NewFlagSet("all", pflag.ContinueOnError)
	cfg := config.Default()
	cfg.BindFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		assert.Regexp(t, `(?m)^\s+--`+f.Name+` .*\[env `+config.EnvName(f.Name)+`[],]`, help)
	})
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}
