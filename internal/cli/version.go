package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
)

// What a release build (build/deb.sh) stamps in with -ldflags "-X
// github.com/portkit/portkit/internal/cli.stampedVersion=1.2.3 …". They are
// set by the linker and never written at run time: constants a build
// chooses.
var (
	stampedVersion string // the release version, without a leading v
	stampedCommit  string // the commit built
	stampedDate    string // when it was built, RFC 3339
)

type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	BuildDate  string `json:"build_date,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

// buildVersion says what was built: the version, commit and date a release
// build stamped in, else what the Go toolchain recorded — the module
// version for `go install …@vX`, the VCS revision for a build in a
// checkout.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if stampedVersion != "" {
		v.Version = stampedVersion
	}
	if stampedCommit != "" {
		v.Commit = stampedCommit
	}
	v.BuildDate = stampedDate
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
	if v.Commit != "" {
		line += " " + v.Commit[:min(12, len(v.Commit))]
		if v.Modified {
			line += "-dirty"
		}
	}
	if v.BuildDate != "" {
		line += " built " + v.BuildDate
	}
	_, err := fmt.Fprintf(e.Out, "%s %s %s\n", line, v.Go, v.Platform)
	return err
}
