package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/config"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the tables of flags in docs/spec.md from the commands' flag sets")

// TestSpecListsEveryFlag: docs/spec.md §7's table of each command's flags is
// that command's flag set, with every environment twin and default.
func TestSpecListsEveryFlag(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "spec.md")
	doc, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(doc)

	cfg := config.Default()
	commands := []struct {
		name  string
		flags *pflag.FlagSet
	}{
		{"serve", serveFlags(&cfg)},
		{"check", checkFlags(&cfg, &checkOptions{})},
		{"audit", auditFlags(&cfg, &auditOptions{})},
	}
	want := text
	for _, c := range commands {
		begin := "<!-- flags of " + c.name + ": generated from internal/cli's flag sets; go test ./internal/cli -update-docs -->\n"
		const end = "<!-- end of flags -->"
		b := strings.Index(want, begin)
		require.True(t, b >= 0, "docs/spec.md must hold the flags of %s after %q", c.name, begin)
		b += len(begin)
		e := strings.Index(want[b:], end)
		require.True(t, e >= 0, "docs/spec.md must end the flags of %s with %q", c.name, end)
		want = want[:b] + flagsTable(c.flags) + want[b+e:]
	}
	if *updateDocs {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		return
	}
	assert.Equal(t, want, text, "run go test ./internal/cli -update-docs")
}

// flagsTable renders a flag set as Markdown, in the order --help lists it.
func flagsTable(fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| flag | type | environment | default | meaning |\n|------|------|-------------|---------|---------|\n")
	fs.SortFlags = false
	fs.VisitAll(func(f *pflag.Flag) {
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		env, usage := config.EnvTwins(f)
		for i, e := range env {
			env[i] = "`" + e + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, f.Value.Type(), strings.Join(env, ", "), defaultOf(f), markdownText(usage))
	})
	return b.String()
}

// defaultOf is a flag's default as the table shows it: nothing where --help
// shows none (a zero value), a list without its brackets.
func defaultOf(f *pflag.Flag) string {
	v := f.DefValue
	switch {
	case v == "", v == "[]",
		f.Value.Type() == "bool" && v == "false",
		f.Value.Type() == "int" && v == "0",
		f.Value.Type() == "duration" && v == "0s":
		return ""
	case strings.HasSuffix(f.Value.Type(), "Slice"), strings.HasSuffix(f.Value.Type(), "Array"):
		v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	}
	return "`" + v + "`"
}

// markdownText escapes what Markdown would take for a table cell's end or
// an HTML tag.
func markdownText(s string) string {
	return strings.NewReplacer("|", `\|`, "<", `\<`).Replace(s)
}
