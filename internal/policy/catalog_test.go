package policy

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the tables of rules in README.md and docs/spec.md from policy.Rules")

// TestEveryRuleIsListed: every Rule constant of the package has its row in
// Rules, once.
func TestEveryRuleIsListed(t *testing.T) {
	declared := ruleConstants(t)
	var listed []Rule
	for _, d := range Rules {
		listed = append(listed, d.Rule)
		assert.True(t, d.Denies || d.Warns || d.AuditOnly, "%s neither denies nor warns", d.Rule)
	}
	assert.ElementsMatch(t, declared, listed)
}

// ruleConstants parses the package for constants of type Rule.
func ruleConstants(t *testing.T) []Rule {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	require.NoError(t, err)
	var rules []Rule
	for _, f := range pkgs["policy"].Files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Rule" {
					continue
				}
				for _, v := range vs.Values {
					s, err := strconv.Unquote(v.(*ast.BasicLit).Value)
					require.NoError(t, err)
					rules = append(rules, Rule(s))
				}
			}
		}
	}
	require.NotEmpty(t, rules)
	return rules
}

// rulesTable renders Rules as the Markdown table of the README and docs/spec.md.
func rulesTable() string {
	var b strings.Builder
	b.WriteString("| ID | answers | on | what |\n|----|---------|----|------|\n")
	for _, d := range Rules {
		var answers []string
		if d.Denies {
			answers = append(answers, "denies")
		}
		if d.Warns {
			answers = append(answers, "warns")
		}
		if d.AuditOnly {
			answers = append(answers, "audit only")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Rule, strings.Join(answers, ", "), d.On, d.What)
	}
	return b.String()
}

const (
	tableBegin = "<!-- rules: generated from internal/policy/catalog.go; go test ./internal/policy -update-docs -->\n"
	tableEnd   = "<!-- end of rules -->"
)

// TestDocsListEveryRule: the tables of rules in the README and in
// docs/spec.md §4 are Rules.
func TestDocsListEveryRule(t *testing.T) {
	for _, path := range []string{"README.md", filepath.Join("docs", "spec.md")} {
		t.Run(path, func(t *testing.T) {
			path := filepath.Join("..", "..", path)
			doc, err := os.ReadFile(path)
			require.NoError(t, err)
			text := string(doc)
			begin, end := strings.Index(text, tableBegin), strings.Index(text, tableEnd)
			require.True(t, begin >= 0 && end > begin, "%s must hold the table between %q and %q", path, tableBegin, tableEnd)
			want := text[:begin+len(tableBegin)] + rulesTable() + text[end:]
			if *updateDocs {
				require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
				return
			}
			assert.Equal(t, want, text, "run go test ./internal/policy -update-docs")
		})
	}
}

// TestSpecListsEveryKey: docs/spec.md §1 has a row for every key of
// KnownKeys in its place, so that no key statekeeper reads or writes goes
// undocumented.
func TestSpecListsEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "spec.md"))
	require.NoError(t, err)
	text := string(doc)
	begin, end := strings.Index(text, "\n## 1. "), strings.Index(text, "\n## 2. ")
	require.True(t, begin >= 0 && end > begin, "docs/spec.md must have sections 1 and 2")
	rows := regexp.MustCompile(`(?m)^\|.*\|$`).FindAllString(text[begin:end], -1)
	for _, k := range KnownKeys {
		key := regexp.MustCompile("`" + regexp.QuoteMeta(k.Key) + "(`|: )")
		assert.True(t, slices.ContainsFunc(rows, func(row string) bool {
			return key.MatchString(row) && strings.Contains(row, "| "+string(k.Place)+" |")
		}), "docs/spec.md §1 has no row for %s as a %s", k.Key, k.Place)
	}
}
