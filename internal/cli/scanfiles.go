package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/scan/report"
)

// resumeFile is what an interrupted scan leaves to continue it: the command
// line, so `portkit scan --resume FILE` needs nothing else, and the cursor.
// A resumed scan that completes marks its file Done rather than removing
// it, so that resuming it again is refused with a reason instead of
// rescanning from the old cursor into the same output.
type resumeFile struct {
	Args []string `json:"args"`
	// Ports and Targets are what the scan was of, to say what differs
	// when a command does not fit the cursor.
	Ports   string       `json:"ports,omitempty"`
	Targets uint64       `json:"targets,omitempty"`
	Cursor  *scan.Cursor `json:"cursor,omitempty"`
	// Done is when the scan completed: nothing is left to resume.
	Done *time.Time `json:"done,omitempty"`
	// Unwritten is output a failed write left out, written first when the
	// scan is resumed.
	Unwritten *unwrittenOutput `json:"unwritten,omitempty"`
}

// unwrittenOutput is whole lines of a line format (report.Unwritten).
type unwrittenOutput struct {
	Format string `json:"format"`
	Lines  string `json:"lines"`
}

// isPathFlag tells the flags naming files, saved in a resume file as
// absolute paths: a resume may run from another directory.
func isPathFlag(name string) bool {
	switch name {
	case "out", "input-list", "exclude-file", "ports-file":
		return true
	}
	return false
}

// scanFiles is a scan's files: the resume file it continues, where its
// progress is saved, and the --out file.
type scanFiles struct {
	resumed *resumeFile // what --resume read; nil for a new scan
	// resumePath is where the cursor goes when the scan stops early;
	// explicit when the user named it (--resume-file, or --resume, whose
	// file a resumed scan updates).
	resumePath string
	explicit   bool
	// fallback is where the cursor goes when resumePath cannot be written.
	fallback string
	out      *outFile // nil for stdout
	format   string
	// replayOnly: the resumed scan had completed; only its unwritten
	// output is left.
	replayOnly bool
}

// loadResume reads --resume's file, if given: its cursor, and, when the
// command line names no targets, the saved command line parsed into f.
func loadResume(cmd *cobra.Command, f *scanFlags, args []string) (*scanFiles, []string, error) {
	fs := &scanFiles{resumePath: f.resumeOut, explicit: cmd.Flags().Changed("resume-file")}
	if f.resume == "" {
		return fs, args, nil
	}
	usage := func(format string, a ...any) error {
		return usagef("--resume %s: "+format, append([]any{f.resume}, a...)...)
	}
	if fs.explicit {
		return nil, nil, usage("a resumed scan saves its progress back into this file; leave out --resume-file %s", f.resumeOut)
	}
	saved, err := readResume(f.resume)
	if err != nil {
		return nil, nil, err
	}
	abs, err := filepath.Abs(f.resume)
	if err != nil {
		return nil, nil, usage("%v", err)
	}
	fs.resumed, fs.resumePath, fs.explicit = saved, abs, true
	fs.replayOnly = saved.Cursor == nil
	outGiven, saveGiven := cmd.Flags().Changed("out"), cmd.Flags().Changed("save")
	if len(args) == 0 && f.targetFile == "" {
		// The saved command line, parsed into these same flags: the scan
		// as it was, with this --resume and any flag given now (a new
		// --out, say) in place of the saved one.
		given := map[*pflag.Flag][]string{}
		cmd.Flags().Visit(func(fl *pflag.Flag) { given[fl] = flagValues(fl) })
		if err := cmd.Flags().Parse(saved.Args); err != nil {
			return nil, nil, usage("saved arguments: %v", err)
		}
		for fl, vals := range given {
			setFlagValues(fl, vals)
		}
		args = cmd.Flags().Args()
	}
	if f.out != "" && !outGiven {
		if err := checkSavedOut("--out", f.out, abs); err != nil {
			return nil, nil, usage("%v", err)
		}
	}
	if !saveGiven {
		for _, v := range f.save {
			if sp, err := parseSave(v); err == nil {
				if err := checkSavedOut("--save "+sp.format+"=", sp.name, abs); err != nil {
					return nil, nil, usage("%v", err)
				}
			}
		}
	}
	return fs, args, nil
}

// checkSavedOut allows an output path a resume file names (--out, or a
// --save file) only where the scan wrote it, beside the resume file, and
// not through a symbolic link: a crafted resume file must not make a scan
// run as root write anywhere. The user confirms any other path by giving
// the flag on the command line. flag is how the path is written: "--out",
// or "--save xml=" (no space after it).
func checkSavedOut(flag, out, resume string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	sep := " "
	if strings.HasSuffix(flag, "=") {
		sep = ""
	}
	named := flag + sep + abs
	if dir := filepath.Dir(resume); filepath.Dir(abs) != dir {
		return fmt.Errorf("it names %s, outside the resume file's directory %s; give %s to write there, or %s with another file", named, dir, named, strings.TrimSuffix(strings.Fields(flag)[0], "="))
	}
	if st, err := os.Lstat(abs); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("it names %s, a symbolic link; give %s to write through it, or %s with another file", named, named, strings.TrimSuffix(strings.Fields(flag)[0], "="))
	}
	return nil
}

func readResume(name string) (*resumeFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("--resume: %w", err)
	}
	var r resumeFile
	if err := json.Unmarshal(data, &r); err != nil || r.Cursor == nil && r.Done == nil && r.Unwritten == nil {
		if err == nil {
			err = errors.New("no cursor in it")
		}
		return nil, usagef("--resume %s: not a portkit resume file: %v", name, err)
	}
	if r.Done != nil {
		return nil, usagef("--resume %s: that scan completed at %s; nothing is left to resume (run the scan again without --resume to rescan)",
			name, r.Done.Local().Format(time.DateTime))
	}
	return &r, nil
}

// open checks a resume against this command's targets and ports, finds
// where progress can be saved, and opens the output: in this order, so a
// scan that cannot go on is refused before any file is created.
func (fs *scanFiles) open(e *env, f *scanFlags, format string, targets *portspec.Targets, ports *portspec.PortList) (out io.Writer, continued bool, err error) {
	fs.format = format
	if r := fs.resumed; r != nil {
		if r.Cursor != nil && !r.Cursor.Fits(targets, portSet{ports}) {
			return nil, false, usagef("--resume %s: %s", f.resume, resumeMismatch(r, targets, ports))
		}
		if u := r.Unwritten; u != nil && u.Format != format {
			return nil, false, usagef("--resume %s: it holds results in %s not yet written; resume with -o %s", f.resume, u.Format, u.Format)
		}
	}
	if err := fs.findResumePath(e, f); err != nil {
		return nil, false, err
	}
	if f.out == "" {
		out = &ioWriter{w: e.Out, name: "stdout"}
	} else {
		file, appended, err := openScanOut(f.out, format, fs.resumed != nil)
		if err != nil {
			return nil, false, usagef("--out %s: %w", f.out, err)
		}
		fs.out, out, continued = file, file, appended
	}
	if u := fs.resumedUnwritten(); u != "" {
		if _, err := io.WriteString(out, u); err != nil {
			fs.closeOut()
			return nil, false, err
		}
		continued = true
	}
	return out, continued, nil
}

func (fs *scanFiles) resumedUnwritten() string {
	if fs.resumed == nil || fs.resumed.Unwritten == nil {
		return ""
	}
	return fs.resumed.Unwritten.Lines
}

// resumeMismatch says what differs between the scan a resume file was
// written for and this command's.
func resumeMismatch(r *resumeFile, targets *portspec.Targets, ports *portspec.PortList) string {
	var diffs []string
	if r.Ports != "" && r.Ports != ports.String() {
		diffs = append(diffs, fmt.Sprintf("ports %s, this command has %s", r.Ports, ports.String()))
	}
	if r.Targets != 0 && r.Targets != targets.Len() {
		diffs = append(diffs, fmt.Sprintf("%d address(es), this command has %d", r.Targets, targets.Len()))
	}
	switch {
	case len(diffs) > 0:
		return "written for " + strings.Join(diffs, "; and for ")
	case r.Ports != "":
		return fmt.Sprintf("written for other addresses (as many: %d) than this command's", targets.Len())
	}
	return fmt.Sprintf("written for a scan of %d probes, this command's has %d: not the same targets and ports",
		r.Cursor.Size, targets.Len()*uint64(ports.Len()))
}

// findResumePath makes sure, before the scan, that its progress can be
// saved: a path the user named must be writable, or the scan is refused;
// the default one, in the working directory, falls back to the temporary
// directory, with a warning if that cannot be written either.
func (fs *scanFiles) findResumePath(e *env, f *scanFlags) error {
	err := probeWhole(fs.resumePath, false)
	if err == nil || fs.explicit {
		if err != nil {
			flag := "--resume-file"
			if fs.resumed != nil {
				flag = "--resume"
			}
			return usagef("%s %s: the scan's progress could not be saved there: %v", flag, fs.resumePath, err)
		}
		fs.fallback = filepath.Join(os.TempDir(), filepath.Base(fs.resumePath))
		return nil
	}
	alt := filepath.Join(os.TempDir(), filepath.Base(fs.resumePath))
	if err2 := probeWhole(alt, false); err2 != nil {
		e.warnf("warning: an interrupted scan could not be saved to resume it: %s: %v; %s: %v; give --resume-file", fs.resumePath, err, alt, err2)
		return nil
	}
	fs.resumePath = alt
	return nil
}

// writeResume writes a resume file whole, readable by its owner alone (it
// holds the command line). A symbolic link in its place is replaced, not
// followed: see wholeFile.
func writeResume(name string, data []byte) error {
	return writeWhole(name, 0o600, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// saveResume writes the resume file where it was planned, or, if that
// fails, in the temporary directory; it returns the path written.
func (fs *scanFiles) saveResume(cmd *cobra.Command, r resumeFile) (string, error) {
	r.Args = savedArgs(cmd)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	data = append(data, '\n')
	err = writeResume(fs.resumePath, data)
	if err == nil {
		return fs.resumePath, nil
	}
	if fs.fallback == "" || fs.fallback == fs.resumePath || fs.resumed != nil {
		// A resumed scan's file must not be left behind with its old cursor.
		return "", fmt.Errorf("%s: %v", fs.resumePath, err)
	}
	if err2 := writeResume(fs.fallback, data); err2 != nil {
		return "", fmt.Errorf("%s: %v; %s: %v", fs.resumePath, err, fs.fallback, err2)
	}
	return fs.fallback, nil
}

// savedArgs is the command line to save: every flag given (or read from
// the resume file), paths absolute, then the targets; not --resume nor
// --resume-file, since a resumed scan saves into the file it resumed.
func savedArgs(cmd *cobra.Command) []string {
	var args []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Name == "resume" || fl.Name == "resume-file" {
			return
		}
		for _, v := range flagValues(fl) {
			if isPathFlag(fl.Name) && v != "" {
				if abs, err := filepath.Abs(v); err == nil {
					v = abs
				}
			}
			if sp, err := parseSave(v); fl.Name == "save" && err == nil {
				if abs, err := filepath.Abs(sp.name); err == nil {
					v = sp.format + "=" + abs
				}
			}
			args = append(args, "--"+fl.Name+"="+v)
		}
	})
	return append(args, cmd.Flags().Args()...)
}

// continueCommand is the command that continues this scan from the resume
// file at path. An output that holds the results so far as one document
// (every --save file, an XML or JSON --out) cannot take the rest, and a
// resumed scan refuses to replace it: the command names a new file for each,
// the old name with ".rest" before its extension.
func (fs *scanFiles) continueCommand(cmd *cobra.Command, path, outName string) string {
	c := "portkit scan --resume " + path
	if outName != "stdout" && (fs.format == "json" || fs.format == "xml") {
		c += " --out " + restName(outName)
	}
	if fl := cmd.Flags().Lookup("save"); fl != nil {
		for _, v := range flagValues(fl) {
			if sp, err := parseSave(v); err == nil {
				c += " --save " + sp.format + "=" + restName(sp.name)
			}
		}
	}
	return c
}

// restName is the file for the rest of a scan whose first part is in name,
// absolute, as the resume file's path in the same command.
func restName(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + ".rest" + ext
}

// finish ends the scan's files after w.End: it closes the output, saves the
// progress of a scan that stopped early, marks a resumed scan that
// completed done, and says so. Its error is the exit status when one of
// these decides it (nil: the scan's result decides).
func (fs *scanFiles) finish(e *env, cmd *cobra.Command, w report.Writer, targets *portspec.Targets, ports *portspec.PortList,
	stats scan.Stats, runErr, endErr error) error {
	outName := "stdout"
	if fs.out != nil {
		outName = fs.out.name
	}
	closeErr := fs.closeOut()
	var ioErr *ioError
	if !errors.As(runErr, &ioErr) && !errors.As(endErr, &ioErr) && !errors.As(closeErr, &ioErr) {
		ioErr = nil
	}
	r := resumeFile{Ports: ports.String(), Targets: targets.Len(), Cursor: stats.Cursor}
	if ioErr != nil {
		e.warnf("%v", ioErr)
		u, ok := w.(report.Unwritten)
		if !ok || outName == "stdout" {
			e.warnf("%s is incomplete, and its %s cannot be continued: run the scan again", outName, fs.format)
			return &exitError{code: ExitIO}
		}
		if lines := u.Unwritten(); len(lines) > 0 {
			r.Unwritten = &unwrittenOutput{Format: fs.format, Lines: string(lines)}
		}
		if r.Cursor == nil && r.Unwritten == nil {
			return &exitError{code: ExitIO} // the scan completed; only its close failed
		}
		path, err := fs.saveResume(cmd, r)
		if err != nil {
			e.warnf("could not save the resume file: %v", err)
		} else {
			e.warnf("the scan stopped; free some space and continue with: %s", fs.continueCommand(cmd, path, outName))
		}
		return &exitError{code: ExitIO}
	}
	if stats.Cursor != nil {
		path, err := fs.saveResume(cmd, r)
		if err != nil {
			e.warnf("could not save the resume file: %v", err)
			return &exitError{code: ExitIO}
		}
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			// Stopped by its own error (said next), not by the user.
			e.warnf("the scan stopped early; once the error below is mended, continue with: %s", fs.continueCommand(cmd, path, outName))
			return nil
		}
		e.warnf("interrupted; continue with: %s", fs.continueCommand(cmd, path, outName))
		return nil
	}
	if fs.resumed != nil && runErr == nil {
		now := time.Now().UTC()
		r.Done = &now
		if _, err := fs.saveResume(cmd, r); err != nil {
			e.warnf("could not mark the resume file done (resuming it again would scan again): %v", err)
			return &exitError{code: ExitIO}
		}
	}
	return nil
}

// closeOut syncs and closes the --out file.
func (fs *scanFiles) closeOut() error {
	if fs.out == nil {
		return nil
	}
	out := fs.out
	fs.out = nil
	err := syncFile(out.f)
	if err2 := out.f.Close(); err == nil {
		err = err2
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return &ioError{name: "--out " + out.name, err: unwrapPath(err)}
	}
	return nil
}

// openScanOut opens the --out file. A resumed scan adds to the file of the
// run it continues rather than truncating it: appended says the file held
// results already. A JSON or XML document cannot be continued so; resuming
// into a non-empty one is refused, naming the way out.
func openScanOut(name, format string, resumed bool) (f *outFile, appended bool, err error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND | os.O_TRUNC
	if resumed {
		st, err := os.Stat(name)
		nonEmpty := err == nil && st.Size() > 0
		if nonEmpty && (format == "json" || format == "xml") {
			return nil, false, fmt.Errorf("it holds the results so far as one %s document, which a resumed scan cannot add to: give --out a new file for the rest", strings.ToUpper(format))
		}
		flags &^= os.O_TRUNC
		appended = nonEmpty
	}
	file, err := os.OpenFile(name, flags, 0o666)
	if err != nil {
		return nil, false, unwrapPath(err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, false, unwrapPath(err)
	}
	return &outFile{f: file, name: name, end: st.Size()}, appended, nil
}

// outFile is the --out file, written a whole line at a time: a write that
// fails (a full disk) is cut back to the end of its last whole line, so
// the file never ends in part of a line, and the count it returns is what
// the file holds of p, whole lines only (report.Unwritten keeps the rest).
type outFile struct {
	f    *os.File
	name string
	end  int64 // the file's size: the end of its last whole line
}

func (o *outFile) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	if err == nil {
		o.end += int64(n)
		return n, nil
	}
	whole := bytes.LastIndexByte(p[:n], '\n') + 1
	o.end += int64(whole)
	err = unwrapPath(err)
	if whole < n {
		if terr := o.f.Truncate(o.end); terr != nil {
			err = fmt.Errorf("%v (and its last line, cut short, could not be cut off: %v)", err, unwrapPath(terr))
		}
	}
	return whole, &ioError{name: "--out " + o.name, err: err}
}

// ioWriter names a stream's write errors for the user and for ExitCode.
type ioWriter struct {
	w    io.Writer
	name string
}

func (o *ioWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		err = &ioError{name: o.name, err: unwrapPath(err)}
	}
	return n, err
}

// flagValues and setFlagValues read and put back what a flag was given,
// every value of a repeatable one.
func flagValues(fl *pflag.Flag) []string {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{fl.Value.String()}
}

func setFlagValues(fl *pflag.Flag, vals []string) {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		sv.Replace(vals)
		return
	}
	fl.Value.Set(vals[0])
}
