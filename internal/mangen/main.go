// Command mangen writes portkit's man pages, one per command, from the
// command tree: the same text and examples as --help. Run by `go generate
// ./internal/cli`; CI runs it with -check, which fails when docs/man is
// stale.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/portkit/portkit/internal/cli"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("mangen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("out", "docs/man", "`DIR` to write the pages into")
	check := fl.Bool("check", false, "write nothing; fail when DIR's pages differ from the command tree's")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	pages, err := render(cli.CommandTree(), buildDate())
	if err != nil {
		fmt.Fprintln(stderr, "mangen:", err)
		return 1
	}
	if *check {
		return compare(*out, pages, stderr)
	}
	if err := write(*out, pages); err != nil {
		fmt.Fprintln(stderr, "mangen:", err)
		return 1
	}
	return 0
}

// buildDate is the date in the pages' headers: SOURCE_DATE_EPOCH when set
// (reproducible builds), else today.
func buildDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// render returns each page's file name and text.
func render(root *cobra.Command, date time.Time) (map[string][]byte, error) {
	root.DisableAutoGenTag = true
	pages := map[string][]byte{}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root || c.IsAdditionalHelpTopicCommand() {
			return nil
		}
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		var b bytes.Buffer
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		h := doc.GenManHeader{Title: strings.ToUpper(name), Section: "1", Source: "portkit", Manual: "portkit manual", Date: &date}
		if err := doc.GenMan(c, &h, &b); err != nil {
			return fmt.Errorf("%s: %w", c.CommandPath(), err)
		}
		pages[name+".1"] = b.Bytes()
		return nil
	}
	return pages, walk(root)
}

func write(dir string, pages map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Pages of commands that are gone go too.
	old, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, f := range old {
		if _, ok := pages[filepath.Base(f)]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, text := range pages {
		if err := writeFile(filepath.Join(dir, name), text); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a page whole: a temporary file, synced, renamed over
// the old one.
func writeFile(name string, text []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".mangen-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// compare reports the pages that differ from dir's, their header dates
// aside, and returns 1 if any does.
func compare(dir string, pages map[string][]byte, stderr io.Writer) int {
	var stale []string
	for name, text := range pages {
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(undated(have), undated(text)) {
			stale = append(stale, name)
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, f := range old {
		if _, ok := pages[filepath.Base(f)]; !ok {
			stale = append(stale, filepath.Base(f)+" (no such command)")
		}
	}
	if len(stale) == 0 {
		return 0
	}
	slices.Sort(stale)
	fmt.Fprintf(stderr, "mangen: %s is stale; run `go generate ./internal/cli`:\n  %s\n", dir, strings.Join(stale, "\n  "))
	return 1
}

// undated drops the date from a page's .TH line.
func undated(page []byte) []byte {
	lines := bytes.SplitN(page, []byte("\n"), 3)
	for i, l := range lines[:min(2, len(lines))] {
		if bytes.HasPrefix(l, []byte(".TH ")) {
			f := strings.Fields(string(l))
			if len(f) > 4 {
				f = slices.Delete(f, 3, 5) // "Mon" "YYYY"
			}
			lines[i] = []byte(strings.Join(f, " "))
		}
	}
	return bytes.Join(lines, []byte("\n"))
}
