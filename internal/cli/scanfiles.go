package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/scan"
)

// resumeFile is what an interrupted scan leaves to continue it: the command
// line, so `portkit scan --resume FILE` needs nothing else, and the cursor.
type resumeFile struct {
	Args   []string     `json:"args"`
	Cursor *scan.Cursor `json:"cursor"`
}

// loadResume reads --resume's file, if given: its cursor, and, when the
// command line names no targets, the saved command line parsed into f.
func loadResume(cmd *cobra.Command, f *scanFlags, args []string) (*scan.Cursor, []string, error) {
	if f.resume == "" {
		return nil, args, nil
	}
	saved, err := readResume(f.resume)
	if err != nil {
		return nil, nil, err
	}
	if len(args) == 0 && f.targetFile == "" {
		// The saved command line, parsed into these same flags: the scan
		// as it was, with this --resume and any flag given now (a new
		// --out, say) in place of the saved one.
		given := map[*pflag.Flag][]string{}
		cmd.Flags().Visit(func(fl *pflag.Flag) { given[fl] = flagValues(fl) })
		if err := cmd.Flags().Parse(saved.Args); err != nil {
			return nil, nil, &exitError{code: ExitUsage, err: fmt.Errorf("%s: saved arguments: %w", f.resume, err)}
		}
		for fl, vals := range given {
			setFlagValues(fl, vals)
		}
		args = cmd.Flags().Args()
	}
	return saved.Cursor, args, nil
}

func readResume(name string) (*resumeFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--resume: %w", err)}
	}
	var r resumeFile
	if err := json.Unmarshal(data, &r); err != nil || r.Cursor == nil {
		if err == nil {
			err = errors.New("no cursor in it")
		}
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--resume %s: not a portkit resume file: %v", name, err)}
	}
	return &r, nil
}

func writeResume(name string, cmd *cobra.Command, c *scan.Cursor) error {
	var args []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Name == "resume" {
			return
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				args = append(args, "--"+fl.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+fl.Name+"="+fl.Value.String())
	})
	args = append(args, cmd.Flags().Args()...)
	data, err := json.MarshalIndent(resumeFile{Args: args, Cursor: c}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(data, '\n'), 0o644)
}

// openScanOut opens the --out file. A resumed scan adds to the file of the
// run it continues rather than truncating it: appended says the file held
// results already. A JSON or XML document cannot be continued so; resuming
// into a non-empty one is refused, naming the way out.
func openScanOut(name, format string, resumed bool) (f *os.File, appended bool, err error) {
	if !resumed {
		f, err = os.Create(name)
		return f, false, err
	}
	st, err := os.Stat(name)
	nonEmpty := err == nil && st.Size() > 0
	if nonEmpty && (format == "json" || format == "xml") {
		return nil, false, fmt.Errorf("%s holds the results so far as one %s document, which a resumed scan cannot add to: give --out a new file for the rest", name, strings.ToUpper(format))
	}
	f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	return f, nonEmpty, err
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
