package knock

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// OneTimeFile is knockd's One_Time_Sequences file: one sequence a line,
// in the Sequence syntax, lines beginning with '#' ignored. The first
// unused line is the sequence the door takes; once it opens, its line is
// commented out with a '#' and the next one takes over. knockd overwrites
// the line's first character; portkit puts the '#' in front, so the line
// stays readable, and writes the file whole (a temporary file, fsynced,
// renamed over it), so a crash leaves either the old file or the new one.
type OneTimeFile struct {
	path string

	mu    sync.Mutex
	lines []string     // the file's lines, without their newlines
	seqs  []oneTimeSeq // the unused sequences, in file order
}

type oneTimeSeq struct {
	line int // index in lines
	seq  []Knock
}

// LoadOneTime reads a one-time sequences file. A line that is not a
// sequence is an error naming file:line.
func LoadOneTime(path string) (*OneTimeFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &OneTimeFile{path: path}
	text := strings.TrimSuffix(string(data), "\n")
	if text != "" {
		f.lines = strings.Split(text, "\n")
	}
	for i, l := range f.lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		seq, err := ParseSequence(t)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		f.seqs = append(f.seqs, oneTimeSeq{line: i, seq: seq})
	}
	return f, nil
}

// Path is the file's name.
func (f *OneTimeFile) Path() string { return f.path }

// Current is the sequence in use: the first unused one; nil when all are
// used.
func (f *OneTimeFile) Current() []Knock {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seqs) == 0 {
		return nil
	}
	return f.seqs[0].seq
}

// Remaining is how many sequences are unused.
func (f *OneTimeFile) Remaining() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seqs)
}

// AllKnocks are the knocks of every unused sequence, so that the packet
// filter lets them through for as long as the file lasts.
func (f *OneTimeFile) AllKnocks() []Knock {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ks []Knock
	for _, s := range f.seqs {
		ks = append(ks, s.seq...)
	}
	return ks
}

// UseCurrent marks the current sequence used and writes the file. When
// the write fails, the sequence is still spent in memory: a sequence must
// never open twice.
func (f *OneTimeFile) UseCurrent() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seqs) == 0 {
		return nil
	}
	used := f.seqs[0]
	f.seqs = f.seqs[1:]
	f.lines[used.line] = "#" + f.lines[used.line]
	var b bytes.Buffer
	for _, l := range f.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return writeFileWhole(f.path, b.Bytes())
}

// writeFileWhole replaces name with data: a temporary file in the same
// directory, fsynced, renamed over name, keeping name's permissions.
func writeFileWhole(name string, data []byte) (err error) {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(name); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		if err = tmp.Chmod(mode); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(name)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
