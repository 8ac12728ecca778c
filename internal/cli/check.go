package cli

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/statekeeper/statekeeper/internal/check"
	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/review"
)

var checkHelp = commandHelp{
	usage: "check -f FILE|DIR|- [-f ...] [-R] [-o yaml] [flags]",
	description: `Runs statekeeper's mutations and rules offline on manifests, each object as a CREATE
against a cluster made of the objects installed before it. Reads every object kubectl
reads: YAML streams (---), JSON streams (objects one after the other, with or without
whitespace between them), and lists (any object with items: v1 List, DeploymentList...).
Input is files, directories (their .json, .yaml and .yml files in name order; their
subdirectories too with -R, as a helm template --output-dir tree) or - for stdin.

Objects are judged in the order Helm installs a release, whatever the order of the
files: by kind in Helm's install order (Namespaces, ... Services, Deployments,
HorizontalPodAutoscalers, StatefulSets, ...; other kinds after, by name), in input order
within a kind; pods that name a controller come last. So a helm template stream and
its --output-dir tree get the same answers. (kubectl apply -f DIR applies in file
order instead; name the files in this order for kubectl to meet the same answers.)

Prints one line per reviewed Deployment, StatefulSet and HorizontalPodAutoscaler, and
per Pod stamped with its identity (its StatefulSet must come before it):
  allowed|denied|warning <Kind>/<namespace>/<name>[: <message> [<rule>]]
one per violation; objects statekeeper does not manage print nothing. An HPA whose
target comes later is judged with it: a single-instance target it would scale up is
denied, naming the HPA. In a namespace of mode audit nothing is denied or changed, and
the lines are what the background audit records once everything is installed:
  audit fail|warn <Kind>/<namespace>/<name>: <message> [<rule>]
With -o yaml the objects are printed instead, as they would be stored, with the
headless Services and disruption budgets statekeeper creates, in install order; the
lines go to stderr, followed by one per denied object left out:
  omitted <Kind>/<namespace>/<name>: denied, so the API server would not store it

Exit status: 0 when every object is allowed (warnings and audit findings included), 1
when any is denied, 2 when any object cannot be read (each is named by file, line and
number; the others are still judged).`,
}

// checkOptions are check's own flags; the policy flags go to a config.Config.
type checkOptions struct {
	paths             []string
	recursive         bool
	output, namespace string
}

// checkFlags is check's flag set, bound to cfg and o.
func checkFlags(cfg *config.Config, o *checkOptions) *pflag.FlagSet {
	fs := newFlagSet("check")
	fs.StringArrayVarP(&o.paths, "filename", "f", nil, "manifest file, directory of .json/.yaml/.yml files, or - for stdin (repeatable)")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "read the subdirectories of directories given with -f too")
	fs.StringVarP(&o.output, "output", "o", "", `"yaml" prints the objects as they would be stored instead of the decisions`)
	fs.StringVarP(&o.namespace, "namespace", "n", "default", "namespace of objects that name none")
	cfg.BindPolicyFlags(fs)
	return fs
}

func runCheck(args []string, s streams) int {
	cfg := config.Default()
	var o checkOptions
	fs := checkFlags(&cfg, &o)
	if code, done := parseFlags(fs, args, checkHelp, s); done {
		return code
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q: name input with -f", fs.Args()))
	}
	if len(o.paths) == 0 {
		problems = append(problems, "no input: give -f FILE, -f DIR or -f - for stdin")
	}
	if o.output != check.OutputLines && o.output != check.OutputYAML {
		problems = append(problems, fmt.Sprintf("--output: unknown format %q: must be yaml or omitted", o.output))
	}
	if o.namespace == "" {
		problems = append(problems, "--namespace: must not be empty")
	}
	if reportProblems(s, "check", problems, cfg.Validate()) {
		return ExitUsage
	}
	return check.Run(context.Background(), check.Options{
		Paths: o.paths, Recursive: o.recursive, Output: o.output, Namespace: o.namespace, Settings: review.SettingsFrom(cfg),
	}, s.stdin, s.stdout, s.stderr)
}
