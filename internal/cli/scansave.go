package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/scan/report"
)

// --save FORMAT=FILE writes the scan's report to FILE besides the one on
// stdout (or --out), as nmap's -oX, -oG and -oN do. Each file is written
// to a temporary file beside it and renamed over FILE once the report is
// whole, at the end of the scan (interrupted or not), so FILE is never
// half a report.

// saveSpec is one --save value read.
type saveSpec struct{ format, name string }

// parseSave reads a --save value, FORMAT=FILE.
func parseSave(v string) (saveSpec, error) {
	format, name, ok := strings.Cut(v, "=")
	if !ok || name == "" || !slices.Contains(report.Formats(), format) {
		return saveSpec{}, fmt.Errorf("--save %q: want FORMAT=FILE, FORMAT one of %s", v, strings.Join(report.Formats(), ", "))
	}
	return saveSpec{format, name}, nil
}

// savedFile is a report being written, whole at commit (see wholeFile).
type savedFile struct {
	name string
	file *wholeFile
	w    report.Writer
}

type savedFiles []*savedFile

// openSaved opens the --save files. A resumed scan does not replace a
// file that holds the results of the run it continues.
func openSaved(specs []string, resumed bool, opts report.Options) (savedFiles, error) {
	var files savedFiles
	for _, v := range specs {
		sp, err := parseSave(v)
		if err != nil {
			files.discard()
			return nil, &exitError{code: ExitUsage, err: err}
		}
		if st, err := os.Stat(sp.name); resumed && err == nil && st.Size() > 0 {
			files.discard()
			return nil, usagef("--save %s: it holds the results so far, which the rest would replace: give --save a new file for the rest", sp.name)
		}
		file, err := createWhole(sp.name, 0o666, true)
		if err != nil {
			files.discard()
			return nil, usagef("--save %s: %w", sp.name, err)
		}
		o := opts
		o.All = o.All && sp.format != "table" // the table shows open ports only, as on stdout
		w, err := report.New(sp.format, file, o)
		if err != nil {
			file.discard()
			files.discard()
			return nil, usagef("--save %s: %w", v, err)
		}
		files = append(files, &savedFile{name: sp.name, file: file, w: w})
	}
	return files, nil
}

func (fs savedFiles) writers() []report.Writer {
	var ws []report.Writer
	for _, f := range fs {
		ws = append(ws, f.w)
	}
	return ws
}

// commit puts every whole report in its place.
func (fs savedFiles) commit() error {
	for _, f := range fs {
		if err := f.file.commit(); err != nil {
			return fmt.Errorf("--save %s: %w", f.name, err)
		}
	}
	return nil
}

// discard removes what was not committed.
func (fs savedFiles) discard() {
	for _, f := range fs {
		f.file.discard()
	}
}

// teeReport writes one report to several writers, the first error stopping it.
type teeReport []report.Writer

func (t teeReport) Begin(info report.ScanInfo) error {
	for _, w := range t {
		if err := w.Begin(info); err != nil {
			return err
		}
	}
	return nil
}

func (t teeReport) Result(r scan.Result) error {
	for _, w := range t {
		if err := w.Result(r); err != nil {
			return err
		}
	}
	return nil
}

func (t teeReport) End(s report.Summary) error {
	for _, w := range t {
		if err := w.End(s); err != nil {
			return err
		}
	}
	return nil
}

func (t teeReport) Flush() error {
	for _, w := range t {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}
