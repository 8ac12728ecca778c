// Command statekeeper is the statekeeper admission webhook (`serve`) and its
// offline manifest checker (`check`); see internal/cli.
package main

import (
	"os"

	"github.com/statekeeper/statekeeper/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
