package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
)

// wholeFile is a file portkit writes whole or not at all: the report of
// `report --out` and `scan --save`, and the resume file. It is written to
// a new file beside its name, synced, then renamed over the name, so a
// reader never sees half of it and a full disk leaves the old file as it
// was. Every such file goes through here, so that they all behave alike:
//
//   - A name that is not a regular file (/dev/null, a FIFO, /dev/stdout)
//     is written to as it is: renaming over it would put a regular file in
//     the place of the device or pipe (as root, /dev/null itself).
//   - With followLinks, a symbolic link is followed and the file it names
//     replaced, as a user who names the link means; without, the link is
//     replaced (the resume file, whose default name lies in the working
//     directory, where a link planted there must not send a root scan's
//     write elsewhere).
type wholeFile struct {
	name string   // the name the file takes at commit
	f    *os.File // a new file beside name, or name itself when not a regular file
	tmp  bool     // f is the new file, renamed over name at commit
}

// createWhole opens the file that will replace name at commit. perm is the
// new file's mode, less the umask.
func createWhole(name string, perm fs.FileMode, followLinks bool) (*wholeFile, error) {
	if st, err := os.Stat(name); err == nil && !st.Mode().IsRegular() && (followLinks || !isLink(name)) {
		if st.IsDir() {
			return nil, errors.New("a directory")
		}
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return nil, unwrapPath(err)
		}
		return &wholeFile{name: name, f: f}, nil
	}
	if followLinks {
		if real, err := filepath.EvalSymlinks(name); err == nil {
			name = real
		}
	}
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	// Random, not PID-based: two scans in one directory must not collide.
	for range 100 {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", base, rand.Uint32()))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, unwrapPath(err)
		}
		return &wholeFile{name: name, f: f, tmp: true}, nil
	}
	return nil, fmt.Errorf("no free temporary name beside %s", name)
}

func isLink(name string) bool {
	st, err := os.Lstat(name)
	return err == nil && st.Mode()&fs.ModeSymlink != 0
}

func (w *wholeFile) Write(p []byte) (int, error) { return w.f.Write(p) }

// commit puts the file in its place: synced, closed, renamed over its
// name, and the rename made durable where the file system can.
func (w *wholeFile) commit() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	err := syncFile(f)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if !w.tmp {
		return unwrapPath(err)
	}
	if err == nil {
		err = os.Rename(f.Name(), w.name)
	}
	if err != nil {
		os.Remove(f.Name())
		return unwrapPath(err)
	}
	if dir, err := os.Open(filepath.Dir(w.name)); err == nil {
		dir.Sync() // not every file system can
		dir.Close()
	}
	return nil
}

// discard removes what was not committed; the name keeps what it held.
func (w *wholeFile) discard() {
	if w.f == nil {
		return
	}
	w.f.Close()
	if w.tmp {
		os.Remove(w.f.Name())
	}
	w.f = nil
}

// writeWhole writes a file whole with write, or leaves name as it was.
func writeWhole(name string, perm fs.FileMode, followLinks bool, write func(io.Writer) error) error {
	w, err := createWhole(name, perm, followLinks)
	if err != nil {
		return err
	}
	if err := write(w); err != nil {
		w.discard()
		return unwrapPath(err)
	}
	return w.commit()
}

// syncFile flushes f to its disk. A device or pipe that cannot be synced
// (/dev/null, a FIFO: EINVAL) has nothing to flush: that is no error.
func syncFile(f *os.File) error {
	err := f.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		if st, serr := f.Stat(); serr == nil && !st.Mode().IsRegular() {
			return nil
		}
	}
	return err
}

// probeWhole checks that name can be written as createWhole writes it,
// leaving nothing behind.
func probeWhole(name string, followLinks bool) error {
	w, err := createWhole(name, 0o600, followLinks)
	if err != nil {
		return err
	}
	w.discard()
	return nil
}

// unwrapPath drops an *os.PathError's operation and path, which messages
// name their own way.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
