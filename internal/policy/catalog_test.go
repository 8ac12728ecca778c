package policy

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the README's table of rules from policy.Rules")

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

// RulesTable renders Rules as the README's Markdown table.
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

// TestREADMEListsEveryRule: the README's table of rules is Rules.
func TestREADMEListsEveryRule(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(readme)
	begin, end := strings.Index(text, tableBegin), strings.Index(text, tableEnd)
	require.True(t, begin >= 0 && end > begin, "README.md must hold the table between %q and %q", tableBegin, tableEnd)
	want := text[:begin+len(tableBegin)] + rulesTable() + text[end:]
	if *updateDocs {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		return
	}
	assert.Equal(t, want, text, "run go test ./internal/policy -update-docs")
}
