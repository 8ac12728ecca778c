package audit

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Output formats of `statekeeper audit`.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputJUnit = "junit"
)

// Failed reports whether any finding is a Fail.
func Failed(audits []NamespaceAudit) bool {
	for _, a := range audits {
		for _, f := range a.Findings {
			if f.Result == Fail {
				return true
			}
		}
	}
	return false
}

// Render writes the audits in format.
func Render(w io.Writer, format string, audits []NamespaceAudit) error {
	switch format {
	case OutputTable, "":
		return renderTable(w, audits)
	case OutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonReport{Namespaces: nonNil(audits)})
	case OutputJUnit:
		return renderJUnit(w, audits)
	}
	return fmt.Errorf("unknown output format %q", format)
}

// jsonReport is the -o json document.
type jsonReport struct {
	Namespaces []NamespaceAudit `json:"namespaces"`
}

func nonNil(audits []NamespaceAudit) []NamespaceAudit {
	out := make([]NamespaceAudit, 0, len(audits))
	for _, a := range audits {
		if a.Audited == nil {
			a.Audited = []Object{}
		}
		if a.Findings == nil {
			a.Findings = []Finding{}
		}
		out = append(out, a)
	}
	return out
}

func renderTable(w io.Writer, audits []NamespaceAudit) error {
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

func renderJUnit(w io.Writer, audits []NamespaceAudit) error {
	doc := junitSuites{Name: "statekeeper audit"}
	for _, a := range audits {
		suite := junitSuite{Name: a.Namespace}
		byObject := map[Object][]Finding{}
		for _, f := range a.Findings {
			byObject[f.Object] = append(byObject[f.Object], f)
		}
		for _, o := range a.Audited {
			c := junitCase{ClassName: a.Namespace, Name: o.Kind + "/" + o.Name}
			var out []string
			for _, f := range byObject[o] {
				line := fmt.Sprintf("%s [%s]", f.Message, f.Rule)
				if f.Result == Fail {
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
