package cli

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/statekeeper/statekeeper/internal/audit"
)

// Output formats of `statekeeper audit`.
const (
	auditOutputTable = "table"
	auditOutputJSON  = "json"
	auditOutputJUnit = "junit"
)

// auditFailed reports whether any finding is a Fail: `statekeeper audit`
// then exits 1.
func auditFailed(audits []audit.NamespaceAudit) bool {
	for _, a := range audits {
		for _, f := range a.Findings {
			if f.Result == audit.Fail {
				return true
			}
		}
	}
	return false
}

// renderAudit writes the audits in format.
func renderAudit(w io.Writer, format string, audits []audit.NamespaceAudit) error {
	switch format {
	case auditOutputTable, "":
		return renderAuditTable(w, audits)
	case auditOutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(auditJSON{Namespaces: nonNil(audits)})
	case auditOutputJUnit:
		return renderAuditJUnit(w, audits)
	}
	return fmt.Errorf("unknown output format %q", format)
}

// auditJSON is the -o json document.
type auditJSON struct {
	Namespaces []audit.NamespaceAudit `json:"namespaces"`
}

func nonNil(audits []audit.NamespaceAudit) []audit.NamespaceAudit {
	out := make([]audit.NamespaceAudit, 0, len(audits))
	for _, a := range audits {
		if a.Audited == nil {
			a.Audited = []audit.Object{}
		}
		if a.Findings == nil {
			a.Findings = []audit.Finding{}
		}
		out = append(out, a)
	}
	return out
}

func renderAuditTable(w io.Writer, audits []audit.NamespaceAudit) error {
	objects, findings := 0, 0
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tRULE\tRESULT\tMESSAGE")
	for _, a := range audits {
		objects += len(a.Audited)
		for _, f := range a.Findings {
			findings++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Namespace, f.Object.Kind, f.Object.Name, f.Rule, f.Result, f.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d objects audited in %d namespaces, %d findings\n", objects, len(audits), findings)
	return err
}

// The JUnit XML that CI systems read: a suite per namespace, a test case per
// audited object, a failure per fail finding; warnings go to system-out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string         `xml:"classname,attr"`
	Name      string         `xml:"name,attr"`
	Failures  []junitFailure `xml:"failure,omitempty"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func renderAuditJUnit(w io.Writer, audits []audit.NamespaceAudit) error {
	doc := junitSuites{Name: "statekeeper audit"}
	for _, a := range audits {
		suite := junitSuite{Name: a.Namespace}
		byObject := map[audit.Object][]audit.Finding{}
		for _, f := range a.Findings {
			byObject[f.Object] = append(byObject[f.Object], f)
		}
		for _, o := range a.Audited {
			c := junitCase{ClassName: a.Namespace, Name: o.Kind + "/" + o.Name}
			var out []string
			for _, f := range byObject[o] {
				line := fmt.Sprintf("%s [%s]", f.Message, f.Rule)
				if f.Result == audit.Fail {
					c.Failures = append(c.Failures, junitFailure{Type: string(f.Rule), Message: line, Text: line})
				} else {
					out = append(out, "warning: "+line)
				}
			}
			c.SystemOut = strings.Join(out, "\n")
			if len(c.Failures) > 0 {
				suite.Failures++
			}
			suite.Cases = append(suite.Cases, c)
		}
		suite.Tests = len(suite.Cases)
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Suites = append(doc.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
