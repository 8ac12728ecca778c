package config

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/statekeeper/statekeeper/internal/policy"
)

func TestDefaultIsValid(t *testing.T) {
	require.NoError(t, Default().Validate())
}

// load binds every flag, parses args and applies env the way the CLI does.
func load(args []string, env map[string]string) (Config, error) {
	cfg := Default()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	err := ApplyEnv(fs, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	return cfg, err
}

func TestFlagsWinOverEnvironmentOverDefaults(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*Config)
	}{
		{
			name: "defaults",
			want: func(*Config) {},
		},
		{
			name: "environment over defaults",
			env: map[string]string{
				"STATEKEEPER_WEBHOOK_PORT":         "10443",
				"STATEKEEPER_DEFAULT_MODE":         "warn",
				"STATEKEEPER_DEFAULT_STORAGE_SIZE": "5Gi",
				"STATEKEEPER_EXCLUDED_NAMESPACES":  "a,b",
				"STATEKEEPER_LEADER_ELECT":         "true",
				"STATEKEEPER_ENABLE_HTTP2":         "true",
				"STATEKEEPER_LOG_FORMAT":           "console",
				"STATEKEEPER_SHUTDOWN_DRAIN":       "7s",
			},
			want: func(c *Config) {
				c.WebhookPort = 10443
				c.DefaultMode = policy.ModeWarn
				c.DefaultStorageSize = resource.MustParse("5Gi")
				c.ExcludedNamespaces = []string{"a", "b"}
				c.LeaderElect = true
				c.ShutdownDrain = 7 * time.Second
				c.EnableHTTP2 = true
				c.LogFormat = LogFormatConsole
			},
		},
		{
			name: "flags over environment",
			args: []string{"--webhook-port=11443", "--default-mode=off", "--excluded-namespaces=c", "--excluded-namespaces=d", "--leader-elect=false"},
			env: map[string]string{
				"STATEKEEPER_WEBHOOK_PORT":        "10443",
				"STATEKEEPER_DEFAULT_MODE":        "warn",
				"STATEKEEPER_EXCLUDED_NAMESPACES": "a,b",
				"STATEKEEPER_LEADER_ELECT":        "true",
			},
			want: func(c *Config) {
				c.WebhookPort = 11443
				c.DefaultMode = policy.ModeOff
				c.ExcludedNamespaces = []string{"c", "d"}
			},
		},
		{
			name: "own namespace from the Downward API variable",
			env:  map[string]string{"POD_NAMESPACE": "statekeeper-system"},
			want: func(c *Config) { c.Namespace = "statekeeper-system" },
		},
		{
			name: "own namespace: statekeeper's variable over the Downward API's",
			env:  map[string]string{"POD_NAMESPACE": "from-pod", "STATEKEEPER_NAMESPACE": "from-statekeeper"},
			want: func(c *Config) { c.Namespace = "from-statekeeper" },
		},
		{
			name: "an empty variable empties the setting",
			args: []string{"--default-storage-class=fast"},
			env:  map[string]string{"STATEKEEPER_EXCLUDED_NAMESPACES": "", "STATEKEEPER_DEFAULT_STORAGE_CLASS": ""},
			want: func(c *Config) {
				c.ExcludedNamespaces = []string{}
				c.DefaultStorageClass = "fast"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(tt.args, tt.env)
			require.NoError(t, err)
			want := Default()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestBadValuesAreRejectedWithTheirSource(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "flag: unknown mode",
			args:    []string{"--default-mode=strict"},
			wantErr: `invalid argument "strict" for "--default-mode" flag: unknown mode "strict": must be one of "enforce", "warn", "audit", "off"`,
		},
		{
			name:    "flag: bad quantity",
			args:    []string{"--default-storage-size=lots"},
			wantErr: `invalid argument "lots" for "--default-storage-size" flag: "lots" is not a resource quantity such as 1Gi or 500Mi`,
		},
		{
			name: "environment: each bad variable named",
			env:  map[string]string{"STATEKEEPER_WEBHOOK_PORT": "https", "STATEKEEPER_DEFAULT_MODE": "strict"},
			wantErr: `STATEKEEPER_DEFAULT_MODE="strict" (--default-mode): unknown mode "strict": must be one of "enforce", "warn", "audit", "off"` + "\n" +
				`STATEKEEPER_WEBHOOK_PORT="https" (--webhook-port): strconv.ParseInt: parsing "https": invalid syntax`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.args, tt.env)
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{
			name:    "port out of range",
			change:  func(c *Config) { c.WebhookPort = 70000 },
			wantErr: "--webhook-port: port must be between 1 and 65535, got 70000",
		},
		{
			name:   "metrics and probes disabled",
			change: func(c *Config) { c.MetricsBindAddress, c.HealthProbeBindAddress = "0", "0" },
		},
		{
			name:    "bind address without port",
			change:  func(c *Config) { c.MetricsBindAddress = "localhost" },
			wantErr: `--metrics-bind-address: "localhost" is not "host:port" or "0" to disable: address localhost: missing port in address`,
		},
		{
			name:    "bind address with a bad port",
			change:  func(c *Config) { c.HealthProbeBindAddress = ":http" },
			wantErr: `--health-probe-bind-address: ":http": port must be a number between 0 and 65535`,
		},
		{
			name:    "negative drain",
			change:  func(c *Config) { c.ShutdownDrain = -time.Second },
			wantErr: "--shutdown-drain: must not be negative, got -1s",
		},
		{
			name:    "unknown mode",
			change:  func(c *Config) { c.DefaultMode = "strict" },
			wantErr: `--default-mode: unknown mode "strict": must be one of "enforce", "warn", "audit", "off"`,
		},
		{
			name:    "zero storage size",
			change:  func(c *Config) { c.DefaultStorageSize = resource.Quantity{} },
			wantErr: `--default-storage-size: storage size must be positive, got "0"`,
		},
		{
			name: "bad names",
			change: func(c *Config) {
				c.ExcludedNamespaces = []string{"kube-system", "Bad_NS"}
				c.DefaultStorageClass = "Fast SSD"
			},
			wantErr: `--default-storage-class: "Fast SSD" is not a valid storage class name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')` + "\n" + `--excluded-namespaces: "Bad_NS" is not a valid namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		},
		{
			name:    "empty cluster domain",
			change:  func(c *Config) { c.ClusterDomain = "" },
			wantErr: "--cluster-domain: must not be empty",
		},
		{
			name:    "log settings",
			change:  func(c *Config) { c.LogFormat, c.LogLevel = "text", "verbose" },
			wantErr: `--log-format: unknown log format "text": must be "json" or "console"` + "\n" + `--log-level: unknown log level "verbose": must be debug, info, warn, error or a verbosity from 0 to 127`,
		},
		{
			name:   "numeric verbosity",
			change: func(c *Config) { c.LogLevel = "4" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestExcludedAddsOwnNamespaceOnce(t *testing.T) {
	cfg := Default()
	cfg.Namespace = "statekeeper-system"
	assert.Equal(t, []string{"kube-system", "kube-public", "kube-node-lease", "statekeeper-system"}, cfg.Excluded())
	cfg.Namespace = "kube-system"
	assert.Equal(t, []string{"kube-system", "kube-public", "kube-node-lease"}, cfg.Excluded())
	assert.Equal(t, []string{"kube-system", "kube-public", "kube-node-lease"}, cfg.ExcludedNamespaces, "the configured list is left as it was")
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]LogLevel{"debug": -1, "info": 0, "warn": 1, "error": 2, "0": 0, "3": -3, "127": -127} {
		got, err := ParseLogLevel(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "trace", "-1", "128"} {
		_, err := ParseLogLevel(in)
		assert.EqualError(t, err, `unknown log level "`+in+`": must be debug, info, warn, error or a verbosity from 0 to 127`, in)
	}
}
