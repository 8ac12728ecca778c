//go:build faults

package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

const (
	// chartDir, devCAScript and the scripts are relative to this package:
	// go test runs in the package directory.
	chartDir       = "../../charts/statekeeper"
	devCAScript    = "../../certs/dev-ca.sh"
	testhostScript = "../../hack/testhost.sh"
	clusterScript  = "../../hack/cluster.sh"

	releaseName      = "statekeeper"
	releaseNamespace = "statekeeper"
	chartContainer   = "statekeeper"
	// testNamespaceLabel marks the namespaces the load writes into, so a run
	// deletes what an interrupted one left.
	testNamespaceLabel = "faults.statekeeper.io/test"
)

// settings is what the suite is told through the environment (see the
// Makefile's faults target).
type settings struct {
	kubeconfig  string
	helm        string
	statekeeper string
	workDir     string
	// replicas is how many statekeeper replicas run (FAULTS_REPLICAS, 2).
	replicas int
	// rate is the load's writes per second (FAULTS_RATE, 50, which the
	// two-core machine this was written on sustains: docs/faults.md).
	rate int
	// burst is how many workloads the burst scenario creates (FAULTS_BURST, 1000).
	burst int
}

func settingsFromEnv() (settings, error) {
	s := settings{
		kubeconfig:  os.Getenv("KUBECONFIG"),
		helm:        os.Getenv("HELM"),
		statekeeper: os.Getenv("STATEKEEPER"),
		workDir:     os.Getenv("FAULTS_WORKDIR"),
	}
	var errs []error
	for name, v := range map[string]*int{"FAULTS_REPLICAS": &s.replicas, "FAULTS_RATE": &s.rate, "FAULTS_BURST": &s.burst} {
		def := map[string]int{"FAULTS_REPLICAS": 2, "FAULTS_RATE": 50, "FAULTS_BURST": 1000}[name]
		*v = def
		if raw := os.Getenv(name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive number", name, raw))
			}
			*v = n
		}
	}
	if s.replicas < 2 {
		errs = append(errs, errors.New("FAULTS_REPLICAS: the scenarios need at least 2 replicas"))
	}
	if s.kubeconfig == "" {
		errs = append(errs, errors.New("KUBECONFIG must name the local cluster"))
	}
	if s.helm == "" {
		errs = append(errs, errors.New("HELM must name the helm binary"))
	}
	if s.statekeeper == "" {
		errs = append(errs, errors.New("STATEKEEPER must name the statekeeper binary"))
	}
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("the suite makes network namespaces: run it as root"))
	}
	for _, tool := range []string{"ip", "unshare", "hostname"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (Debian: iproute2, util-linux, hostname)", tool, err))
		}
	}
	if s.workDir == "" {
		dir, err := os.MkdirTemp("", "statekeeper-faults-")
		errs = append(errs, err)
		s.workDir = dir
	}
	if abs, err := filepath.Abs(s.workDir); err == nil {
		s.workDir = abs
	}
	return s, errors.Join(errs...)
}

func TestMain(m *testing.M) {
	var err error
	if suiteSettings, err = settingsFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n(run the suite through `make faults`, which sets these up)\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var suiteSettings settings
