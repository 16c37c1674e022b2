package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Markdown renders the report as a header line and a table, one row per
// command, with ratios relative to the first command.
func (r *Report) Markdown() string {
	var b strings.Builder
	if r.Title != "" {
		fmt.Fprintf(&b, "**%s** — ", r.Title)
	}
	fmt.Fprintf(&b, "%s, %s %s, %d CPUs, %d runs per command (+%d warmup), order rotated each round\n\n",
		r.Start.UTC().Format("2006-01-02 15:04 UTC"), r.GOOS, r.GOARCH, r.NumCPU, r.Runs, r.Warmup)
	b.WriteString("| command | command line | median | min | p90 | CPU (median) | peak RSS | ratio |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range r.Stats {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Command.Name, codeSpan(s.Command.String()),
			formatDuration(s.MedianWall), formatDuration(s.MinWall), formatDuration(s.P90Wall),
			formatDuration(s.MedianCPU), formatPeakRSS(s.PeakRSS, s.RSSFloor),
			formatRatio(r.Ratio(s.Command.Name, r.Stats[0].Command.Name)))
	}
	return b.String()
}

// formatDuration prints d with three significant digits in the largest unit
// that keeps it at least 1, e.g. "1.23 ms", "12.3 ms", "123 ms".
func formatDuration(d time.Duration) string {
	units := []struct {
		name string
		size time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}}
	for _, u := range units {
		if d >= u.size {
			v := float64(d) / float64(u.size)
			return fmt.Sprintf("%.*f %s", decimals(v), v, u.name)
		}
	}
	return fmt.Sprintf("%d ns", d)
}

// decimals gives the number of decimals that shows v with three significant
// digits (fewer for large values, where all the integer digits are kept).
func decimals(v float64) int {
	switch {
	case v < 10:
		return 2
	case v < 100:
		return 1
	}
	return 0
}

// formatPeakRSS prints a peak RSS that may be the harness's floor (see
// Sample.RSSFloor) as "≤ floor".
func formatPeakRSS(peak, floor int64) string {
	if peak > 0 && floor > 0 && peak <= floor+rssSlack {
		return "≤ " + formatRSS(floor+rssSlack)
	}
	return formatRSS(peak)
}

// rssSlack allows for the harness growing between measuring its floor and
// the exec: a peak this close to the floor may be the floor.
const rssSlack = 256 << 10

func formatRSS(bytes int64) string {
	if bytes <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

func formatRatio(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", x)
}

// String returns c as a POSIX shell command line (environment assignments
// first), quoted so that it can be pasted into a shell. Dir is not shown.
func (c Command) String() string {
	var words []string
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		words = append(words, k+"="+shellQuote(v))
	}
	for _, a := range c.Argv {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote leaves plain words bare, single-quotes anything else, and falls
// back to double quotes (escaping what the shell would expand) when the word
// itself holds a single quote.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// codeSpan wraps s as inline code that is safe inside a table cell.
func codeSpan(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// UpdateSection returns doc with the text between "<!-- bench:NAME -->" and
// "<!-- /bench:NAME -->" replaced by body, keeping the markers. Without such
// a pair it appends a new marked section at the end. Replacing is idempotent:
// body is stored as its own lines, whatever trailing newlines it had.
func UpdateSection(doc []byte, name, body string) []byte {
	open := []byte("<!-- bench:" + name + " -->")
	closing := []byte("<!-- /bench:" + name + " -->")
	content := "\n" + strings.TrimRight(body, "\n") + "\n"

	if s := bytes.Index(doc, open); s >= 0 {
		if e := bytes.Index(doc[s:], closing); e >= 0 {
			e += s
			// Pair the end marker with the nearest opening one before it, so
			// a stray opening marker earlier in doc does not swallow the text
			// up to the section.
			s += bytes.LastIndex(doc[s:e], open) + len(open)
			out := make([]byte, 0, len(doc)+len(content))
			out = append(out, doc[:s]...)
			out = append(out, content...)
			return append(out, doc[e:]...)
		}
	}
	out := make([]byte, 0, len(doc)+len(content)+len(open)+len(closing)+3)
	out = append(out, doc...)
	out = append(out, '\n')
	out = append(out, open...)
	out = append(out, content...)
	out = append(out, closing...)
	return append(out, '\n')
}

// WriteSection puts body into the section name of the markdown file at
// path (UpdateSection), making the file if it is not there yet. The file
// is written whole: a temporary file beside it, synced, renamed over it.
func WriteSection(path, name, body string) error {
	doc, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(UpdateSection(doc, name, body))
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
