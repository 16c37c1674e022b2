package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
)

type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion reads the version the Go toolchain stamped into the binary:
// the module version for `go install …@vX`, the VCS revision for a build in a
// checkout.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersion(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print portkit's version and build",
		Example: "  portkit version\n  portkit version --json",
		Args:    cobra.NoArgs,
		RunE:    runE(func(cmd *cobra.Command, args []string) error { return printVersion(e) }),
	}
}

// printVersion writes the version, for `portkit version` and `portkit
// --version` alike.
func printVersion(e *env) error {
	v := buildVersion()
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(v)
	}
	line := "portkit " + v.Version
	if v.Revision != "" {
		line += " " + v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			line += "-dirty"
		}
	}
	_, err := fmt.Fprintf(e.Out, "%s %s %s\n", line, v.Go, v.Platform)
	return err
}
