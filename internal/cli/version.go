package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release, set at build time with
// -ldflags "-X github.com/statekeeper/statekeeper/internal/cli.version=v1.2.3".
var version = "dev"

// Version is the release and, when the binary was built from a git checkout,
// its commit.
func Version() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		var revision, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "-dirty"
				}
			}
		}
		if revision != "" {
			v += fmt.Sprintf(" (commit %s%s)", revision, modified)
		}
	}
	return v
}

func runVersion(args []string, s streams) int {
	fs := newFlagSet("version")
	if code, done := parseFlags(fs, args, commandHelp{usage: "version", description: "Prints the version of statekeeper."}, s); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(s.stderr, "error: version takes no arguments, got %q\n", fs.Args())
		return ExitUsage
	}
	fmt.Fprintf(s.stdout, "statekeeper %s %s %s/%s\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
