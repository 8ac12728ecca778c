package cli

import (
	"context"
	"fmt"

	"github.com/statekeeper/statekeeper/internal/check"
	"github.com/statekeeper/statekeeper/internal/config"
)

var checkHelp = commandHelp{
	usage: "check -f FILE|DIR|- [-f ...] [-o yaml] [flags]",
	description: `Runs statekeeper's mutations and rules offline on manifests, each object as a CREATE
against a cluster made of the objects that precede it in the input (so that a switch
between Deployment and StatefulSet can be checked). Input is multi-document YAML or
JSON: files, directories (their .yaml and .yml files in name order) or - for stdin.

Prints one line per reviewed Deployment, StatefulSet and HorizontalPodAutoscaler, and
per Pod stamped with its identity (its StatefulSet must precede it):
  allowed|denied|warning <Kind>/<namespace>/<name>[: <message> [<rule>]]
one per violation; objects statekeeper does not manage print nothing. With -o yaml
the mutated objects are printed instead, each stateful StatefulSet followed by the
headless Service statekeeper creates for it, and the lines go to stderr.

Exit status: 0 when every object is allowed (warnings included), 1 when any is
denied, 2 when the input cannot be read.`,
}

func runCheck(args []string, s streams) int {
	cfg := config.Default()
	var paths []string
	var output, namespace string
	fs := newFlagSet("check")
	fs.StringArrayVarP(&paths, "filename", "f", nil, "manifest file, directory of .yaml/.yml files, or - for stdin (repeatable)")
	fs.StringVarP(&output, "output", "o", "", `"yaml" prints the mutated objects instead of the decisions`)
	fs.StringVarP(&namespace, "namespace", "n", "default", "namespace of objects that name none")
	cfg.BindPolicyFlags(fs)
	if code, done := parseFlags(fs, args, checkHelp, s); done {
		return code
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q: name input with -f", fs.Args()))
	}
	if len(paths) == 0 {
		problems = append(problems, "no input: give -f FILE, -f DIR or -f - for stdin")
	}
	if output != check.OutputLines && output != check.OutputYAML {
		problems = append(problems, fmt.Sprintf("--output: unknown format %q: must be yaml or omitted", output))
	}
	if namespace == "" {
		problems = append(problems, "--namespace: must not be empty")
	}
	if reportProblems(s, "check", problems, cfg.Validate()) {
		return ExitUsage
	}
	return check.Run(context.Background(), check.Options{
		Paths: paths, Output: output, Namespace: namespace, Settings: cfg.ReviewSettings(),
	}, s.stdin, s.stdout, s.stderr)
}
