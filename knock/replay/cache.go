package replay

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultCompactAfter is how many digests are appended to the file
// before it is rewritten without the expired ones.
const DefaultCompactAfter = 10000

// lineLen is one line of the file: "<unix seconds, 10 digits> <64 hex>\n".
const lineLen = 10 + 1 + 64 + 1

var (
	// ErrReplay: the digest was seen before, within the window.
	ErrReplay = errors.New("replayed packet")
	// ErrCorrupt: a line of the file is not a digest line.
	ErrCorrupt = errors.New("not a digest line")
	// ErrCompact: the digest was recorded, but rewriting the file
	// afterwards failed; the file keeps growing until a rewrite works.
	ErrCompact = errors.New("compaction failed")
)

// FileError is a failure to read or write the cache's file.
type FileError struct {
	Op   string // "open", "read", "append", "compact"
	Path string
	Line int // for "read": the line at fault
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("replay: %s %s:%d: %v", e.Op, e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("replay: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Options tune a Cache; the zero value is the defaults.
type Options struct {
	Window       Window
	CompactAfter int              // appends before a rewrite; DefaultCompactAfter when 0
	Now          func() time.Time // the clock; time.Now when nil
}

// Cache remembers the SHA-256 digests of accepted packets for
// Window.Span, in memory (one map lookup each) and in a file of one line
// per digest, appended and fsynced before Add returns. It is safe for
// concurrent use.
//
// Memory and file hold at most the digests added within the last Span
// plus CompactAfter more: each rewrite drops the expired ones.
type Cache struct {
	path string
	opts Options

	mu       sync.Mutex
	f        *os.File // nil after Close, or when a rewrite could not reopen the file
	closed   bool
	seen     map[[32]byte]uint32 // digest → when added, in Unix seconds
	appended int                 // lines appended since the last rewrite
}

// Open loads the cache kept at path (a missing file is an empty cache),
// drops the expired digests and rewrites the file without them. A last
// line cut short (a crash mid-append) is ignored; any other line that is
// not a digest line is an error, since refusing to start is safer than
// forgetting digests.
func Open(path string, opts Options) (*Cache, error) {
	if opts.CompactAfter <= 0 {
		opts.CompactAfter = DefaultCompactAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Window = opts.Window.withDefaults()
	c := &Cache{path: path, opts: opts, seen: make(map[[32]byte]uint32)}
	if err := c.load(); err != nil {
		return nil, err
	}
	if err := c.compactLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cache) load() error {
	f, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &FileError{Op: "open", Path: c.path, Err: err}
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if err == io.EOF {
			return nil // a line without its newline was cut short: never acknowledged
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return &FileError{Op: "read", Path: c.path, Err: err}
		}
		d, at, ok := parseLine(line)
		if !ok || err != nil {
			return &FileError{Op: "read", Path: c.path, Line: n, Err: fmt.Errorf("%w: %.80q", ErrCorrupt, line)}
		}
		c.seen[d] = at
	}
}

func parseLine(line []byte) (d [32]byte, at uint32, ok bool) {
	if len(line) != lineLen || line[10] != ' ' || line[lineLen-1] != '\n' {
		return d, 0, false
	}
	secs, err := strconv.ParseUint(string(line[:10]), 10, 32)
	if err != nil {
		return d, 0, false
	}
	if _, err := hex.Decode(d[:], line[11:lineLen-1]); err != nil {
		return d, 0, false
	}
	return d, uint32(secs), true
}

func appendLine(b []byte, d [32]byte, at uint32) []byte {
	b = fmt.Appendf(b, "%010d ", at)
	b = hex.AppendEncode(b, d[:])
	return append(b, '\n')
}

// Seen reports whether d is in the cache.
func (c *Cache) Seen(d [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[d]
	return ok
}

// Len is the number of digests held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Add records d as accepted now, unless it is there already: then it
// returns an error that is ErrReplay. The digest is on disk (appended and
// fsynced) when Add returns nil; on any other error the packet must not be
// accepted, except for ErrCompact, which tells only that the rewrite that
// followed the append failed.
func (c *Cache) Add(d [32]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[d]; ok {
		return fmt.Errorf("replay: digest %x: %w", d[:8], ErrReplay)
	}
	if c.closed {
		return &FileError{Op: "append", Path: c.path, Err: os.ErrClosed}
	}
	if c.f == nil {
		// The last rewrite renamed the file but could not reopen it.
		if err := c.compactLocked(); err != nil {
			return err
		}
	}
	at := uint32(c.opts.Now().Unix())
	// Kept in memory even if the write fails: this process refuses the
	// replay either way.
	c.seen[d] = at
	if _, err := c.f.Write(appendLine(make([]byte, 0, lineLen), d, at)); err != nil {
		return &FileError{Op: "append", Path: c.path, Err: err}
	}
	if err := c.f.Sync(); err != nil {
		return &FileError{Op: "append", Path: c.path, Err: err}
	}
	c.appended++
	if c.appended >= c.opts.CompactAfter {
		if err := c.compactLocked(); err != nil {
			return fmt.Errorf("%w: %w", ErrCompact, err)
		}
	}
	return nil
}

// compactLocked drops the expired digests and rewrites the file with the
// rest: written whole to a temporary file, fsynced, renamed over the old
// one, and the directory fsynced; then the file is reopened for appends.
func (c *Cache) compactLocked() error {
	expired := c.opts.Now().Add(-c.opts.Window.Span()).Unix()
	for d, at := range c.seen {
		if int64(at) < expired {
			delete(c.seen, d)
		}
	}
	fail := func(err error) error { return &FileError{Op: "compact", Path: c.path, Err: err} }
	dir := filepath.Dir(c.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(c.path)+".tmp*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	w := bufio.NewWriter(tmp)
	var line []byte
	for d, at := range c.seen {
		line = appendLine(line[:0], d, at)
		w.Write(line)
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		return fail(err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not possible everywhere (Windows); the rename is done either way
		d.Close()
	}
	// The old handle is of the file just replaced: appends to it would
	// be lost, so it goes whether or not the new one opens.
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	c.f = f
	c.appended = 0
	return nil
}

// Close closes the file. The cache refuses Add afterwards.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
