package sockets

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// clockTicks is USER_HZ, the unit of the start time in /proc/PID/stat. The
// kernel fixes it at 100 on every architecture Go runs on (sysconf
// _SC_CLK_TCK, which would need cgo, returns the same).
const clockTicks = 100

// findProcesses fills in the Processes and Hidden fields of entries from the
// descriptors under root/PID/fd: every process holding each socket.
//
// Every process is looked into, as a socket is shared by fork (a
// pre-forking server's workers, a child caught between fork and exec) and
// by passing descriptors (socket activation), so no holder tells where the
// others are. Reading descriptors is most of the cost (some microseconds
// each, in the kernel): see search for how it is kept down.
func findProcesses(ctx context.Context, root string, entries []Entry) error {
	s := newSearch(entries, false)
	if len(s.want) == 0 {
		return nil
	}
	if err := s.run(ctx, root, nil); err != nil {
		return err
	}
	return s.finish(ctx, root)
}

// newSearch prepares a search for the holders of entries. With late, the
// search runs while more sockets are still being listed, which publish
// hands it when they are: until then it records every other socket it
// meets, for finish to match them with.
func newSearch(entries []Entry, late bool) *search {
	s := &search{entries: entries, want: make(map[uint64]int, len(entries)), collect: late}
	for i := range entries {
		if ino := entries[i].Inode; ino != 0 {
			s.want[ino] = i
		}
	}
	return s
}

// joinLate gives the published late sockets their holders among the
// sockets met before they were published, and appends them to the
// search's entries.
func (s *search) joinLate() {
	l := s.late.Load()
	if l == nil {
		return
	}
	for _, f := range s.readers {
		for _, h := range f.met {
			if i, ok := l.want[uint64(h.inode)]; ok {
				addHolder(&l.entries[i], int(h.pid))
			}
		}
		f.met = nil
	}
	s.entries = append(s.entries, l.entries...)
	s.late.Store(nil)
}

// lateSockets are sockets listed while the search ran, by inode.
type lateSockets struct {
	entries []Entry        // Processes guarded by search.mu
	want    map[uint64]int // socket inode → index in entries; read-only
}

// publish hands the search, while or after it runs, the sockets listed
// since it started; it looks for their holders too from then on.
func (s *search) publish(entries []Entry) {
	l := &lateSockets{entries: entries, want: make(map[uint64]int, len(entries))}
	for i := range entries {
		if ino := entries[i].Inode; ino != 0 {
			l.want[ino] = i
		}
	}
	s.late.Store(l)
}

// finish joins the late sockets (see joinLate) and fills in what each
// holder is. The search must have run and, when started for late sockets,
// had them published.
func (s *search) finish(ctx context.Context, root string) error {
	s.joinLate()
	entries := s.entries
	var holders []int
	for i := range entries {
		for _, p := range entries[i].Processes {
			holders = append(holders, p.PID)
		}
	}
	slices.Sort(holders)
	holders = slices.Compact(holders)
	procs, err := readProcesses(ctx, root, holders)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if e.Inode != 0 && len(e.Processes) == 0 {
			e.Hidden = s.denied.Load()
			continue
		}
		kept := e.Processes[:0]
		for _, p := range e.Processes {
			if proc, ok := procs[p.PID]; ok { // else it exited while we looked
				kept = append(kept, proc)
			}
		}
		e.Processes = kept
		orderHolders(kept)
	}
	return nil
}

// orderHolders sorts the holders of one socket so that the one that opened
// it comes first: a holder before those it forked (a pre-forking server's
// master before its workers; a parent before its child caught between fork
// and exec, which holds the socket for a moment), then by PID. Service
// managers come last: with socket activation init or a systemd user
// manager holds the listener it passed to a service, which is the one
// users mean.
func orderHolders(procs []Process) {
	if len(procs) < 2 {
		return
	}
	parent := make(map[int]int, len(procs)) // holder → its parent, among holders
	for _, p := range procs {
		parent[p.PID] = p.PPID
	}
	depth := func(p Process) int {
		d := 0
		for pid := p.PPID; d < len(procs); d++ { // bounded: a loop is no tree
			ppid, ok := parent[pid]
			if !ok {
				break
			}
			pid = ppid
		}
		return d
	}
	depths := make(map[int]int, len(procs))
	for _, p := range procs {
		depths[p.PID] = depth(p)
	}
	slices.SortFunc(procs, func(a, b Process) int {
		return cmp.Or(
			boolCompare(a.Manager(), b.Manager()),
			cmp.Compare(depths[a.PID], depths[b.PID]),
			cmp.Compare(a.PID, b.PID),
		)
	})
}

// boolCompare orders false before true.
func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// socketInodes returns the sockets process pid has open, by inode.
func socketInodes(root string, pid int) (map[uint64]bool, error) {
	dir := root + "/" + strconv.Itoa(pid) + "/fd"
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]bool)
	for _, n := range names {
		if link, err := os.Readlink(dir + "/" + n.Name()); err == nil {
			if ino := socketInode([]byte(link)); ino != 0 {
				out[ino] = true
			}
		}
	}
	return out, nil
}

// listPIDs lists the processes in rootfd, an open root, in one or two
// getdents calls: /proc lists a few hundred bytes per hundred processes.
func listPIDs(rootfd int, root string) ([]int, error) {
	buf := make([]byte, 64<<10)
	var pids []int
	for {
		n, err := syscall.ReadDirent(rootfd, buf)
		if err != nil {
			return nil, &OpError{Op: "getdents", Path: root, Err: err}
		}
		if n <= 0 {
			return pids, nil
		}
		for b := buf[:n]; len(b) > 0; {
			const nameOff = 19 // see fdReader.list
			reclen := int(ne.Uint16(b[16:]))
			if reclen <= nameOff || reclen > len(b) {
				return nil, &OpError{Op: "getdents", Path: root, Err: fmt.Errorf("dirent of %d bytes in %d", reclen, len(b))}
			}
			name := b[nameOff:reclen]
			b = b[reclen:]
			if end := bytes.IndexByte(name, 0); end >= 0 {
				name = name[:end]
			}
			if pid, ok := parseDec(name, 31); ok && pid > 0 {
				pids = append(pids, int(pid)) // else not a process: /proc/net, /proc/self, …
			}
		}
	}
}

// maxWorkers bounds the processes read at once: past the number of CPUs
// more only contend.
const maxWorkers = 4

// parallel calls fn(w, i) for each i in [0, n), about in order, on a few
// workers numbered w, until stop is set (fn's error sets it too) or ctx
// ends. It returns when every worker has.
func parallel(ctx context.Context, n int, stop *atomic.Bool, fn func(w, i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, workers(n))
	)
	for w := range errs {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(w, i); err != nil {
					errs[w] = err
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func workers(n int) int { return min(runtime.GOMAXPROCS(0), maxWorkers, n) }

// search is one search for the processes holding sockets, shared by its
// workers.
//
// A few workers read processes side by side; a process with many
// descriptors (a busy server's thousands of connections) has them read by
// every worker, so that one large table does not leave the others idle at
// the end. Each descriptor costs one readlinkat, relative to the open fd
// directory, and no allocation.
type search struct {
	entries []Entry        // Processes guarded by mu
	want    map[uint64]int // socket inode → index in entries; read-only
	// collect records every other socket met, in each reader's met, until
	// late is published.
	collect bool
	late    atomic.Pointer[lateSockets]

	mu     sync.Mutex
	denied atomic.Bool // some process's descriptors were not ours to read

	readers []*fdReader // one per worker, kept for finish

	// The work shared out, guarded by work.mu: the processes not yet
	// taken, and the descriptors of large fd tables being read.
	work struct {
		mu      sync.Mutex
		changed sync.Cond // a table shared, a chunk or a process done
		next    int       // index in pids of the next process to read
		reading int       // workers reading a process
		shared  []*fdTable
	}
}

// Descriptors are read in chunks of fdChunk, and a process with more than
// sharedFds of them has its table read by every worker: one busy server's
// ten thousand connections would otherwise keep one worker busy long after
// the others are done.
const (
	fdChunk   = 128
	sharedFds = 2 * fdChunk
)

// fdTable is the descriptors of one process, by name, to be read.
type fdTable struct {
	pid   int
	dirfd int     // its open fd directory
	names []byte  // the descriptors' names, NUL-terminated, one after another
	ends  []int32 // where each name ends, past its NUL
	// Guarded by search.work.mu:
	next int  // the first descriptor no worker has taken
	busy int  // workers reading a chunk of it
	stop bool // its links are not ours to read: no more chunks
}

// procMagic is procfs's f_type in statfs (PROC_SUPER_MAGIC).
const procMagic = 0x9fa0

// heldSocket is a socket that process pid holds, met by a search before
// its late sockets were published. Late sockets come from netlink, which
// gives inodes in 32 bits (idiag_inode), as the kernel numbers sockets:
// 8 bytes a socket, as tens of thousands may be recorded.
type heldSocket struct {
	inode uint32
	pid   int32
}

// run reads the descriptors of the processes pids under root, every
// process when pids is nil, in about the order of their PIDs, on a few
// workers.
func (s *search) run(ctx context.Context, root string, pids []int) error {
	rootfd, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return pathError(&fs.PathError{Op: "open", Path: root, Err: err})
	}
	defer syscall.Close(rootfd)
	if pids == nil {
		if pids, err = listPIDs(rootfd, root); err != nil {
			return err
		}
	}
	var sfs syscall.Statfs_t
	onProc := syscall.Fstatfs(rootfd, &sfs) == nil && sfs.Type == procMagic
	n := workers(len(pids))
	s.work.changed.L = &s.work.mu
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
		stop atomic.Bool // set by an error only
	)
	s.readers = make([]*fdReader, n)
	for w := range n {
		f := &fdReader{search: s, root: root, rootfd: rootfd, onProc: onProc, shares: n > 1,
			dirents: make([]byte, 16<<10), link: make([]byte, 64)}
		s.readers[w] = f
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				c, pid, ok := s.take(pids)
				switch {
				case !ok:
					return
				case c.t != nil:
					f.readChunk(c)
				default:
					err := f.read(pid)
					s.work.mu.Lock()
					s.work.reading--
					s.work.changed.Broadcast()
					s.work.mu.Unlock()
					if err != nil {
						errs[w] = err
						stop.Store(true)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// take gives a worker its next piece of work: a chunk of a shared table
// (first: it is the longest wait), or else the next process (pid). With
// neither left it waits while another worker reads a process, which may
// yet share its table, and then reports none (ok false).
func (s *search) take(pids []int) (c chunk, pid int, ok bool) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	for {
		for _, t := range s.work.shared {
			if c, ok := t.chunkLocked(); ok {
				return c, 0, true
			}
		}
		if s.work.next < len(pids) {
			pid := pids[s.work.next]
			s.work.next++
			s.work.reading++
			return chunk{}, pid, true
		}
		if s.work.reading == 0 {
			return chunk{}, 0, false
		}
		s.work.changed.Wait()
	}
}

// chunk is descriptors [from, to) of a shared table.
type chunk struct {
	t        *fdTable
	from, to int
}

// chunkLocked takes the next chunk of t, marking t busy, or reports that
// none is left.
func (t *fdTable) chunkLocked() (chunk, bool) {
	if t.stop || t.next >= len(t.ends) {
		return chunk{}, false
	}
	c := chunk{t, t.next, min(t.next+fdChunk, len(t.ends))}
	t.next = c.to
	t.busy++
	return c, true
}

// addHolder records that process pid holds the socket of e.
func addHolder(e *Entry, pid int) {
	if slices.ContainsFunc(e.Processes, func(p Process) bool { return p.PID == pid }) {
		return // the same socket on another descriptor
	}
	e.Processes = append(e.Processes, Process{PID: pid})
}

// fdReader is one worker's buffers.
type fdReader struct {
	*search
	root    string
	rootfd  int  // root, open
	onProc  bool // root is a procfs
	shares  bool // there are other workers to share a large table with
	path    []byte
	dirents []byte // getdents buffer
	link    []byte // readlink buffer: "socket:[4294967295]" is 19 bytes
	table   fdTable
	met     []heldSocket // with search.collect: sockets met before late ones were published
}

// read looks through the descriptors of process pid for wanted sockets: it
// lists them, then reads their links, sharing that out when they are many.
func (f *fdReader) read(pid int) error {
	f.path = append(strconv.AppendInt(f.path[:0], int64(pid), 10), "/fd\x00"...)
	fd, err := openat(f.rootfd, &f.path[0], syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC)
	if err != nil {
		return f.fdError(pid, err)
	}
	defer syscall.Close(fd)
	t := &f.table
	*t = fdTable{pid: pid, dirfd: fd, names: t.names[:0], ends: t.ends[:0]}
	if err := f.list(t); err != nil {
		return err
	}
	f.readTable(t)
	return nil
}

// list appends the names of the descriptors in t's directory to t.
func (f *fdReader) list(t *fdTable) error {
	for {
		n, err := syscall.ReadDirent(t.dirfd, f.dirents)
		if err != nil {
			return f.fdError(t.pid, err)
		}
		if n <= 0 {
			return nil
		}
		// Room left for another entry means procfs had none: it fills
		// the buffer while it has descriptors to list. That spares each
		// process the call that would only say so. (Other file systems,
		// a test's fixture, need not fill it.)
		last := f.onProc && len(f.dirents)-n >= maxFdDirent
		for b := f.dirents[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8,
			// then the name, NUL-terminated within reclen.
			const nameOff = 19
			reclen := int(ne.Uint16(b[16:]))
			if reclen <= nameOff || reclen > len(b) {
				return &OpError{Op: "getdents", Path: f.fdDir(t.pid), Err: fmt.Errorf("dirent of %d bytes in %d", reclen, len(b))}
			}
			name := b[nameOff:reclen]
			b = b[reclen:]
			if name[0] == '.' {
				continue
			}
			if end := bytes.IndexByte(name, 0); end >= 0 {
				name = name[:end]
			}
			t.names = append(append(t.names, name...), 0)
			t.ends = append(t.ends, int32(len(t.names)))
		}
		if last {
			return nil
		}
	}
}

// maxFdDirent is the most a descriptor's directory entry takes: 19 bytes
// of header, a name of at most 10 digits and its NUL, rounded up to 8.
const maxFdDirent = 32

// readTable reads the links of t's descriptors, sharing them out when
// they are many.
func (f *fdReader) readTable(t *fdTable) {
	if !f.shares || len(t.ends) <= sharedFds {
		f.readLinks(t, 0, len(t.ends))
		return
	}
	// Shared: other workers read chunks of a copy (this worker's buffers
	// are its own) while this one does too; the directory stays open
	// until every chunk is read.
	shared := &fdTable{pid: t.pid, dirfd: t.dirfd, names: slices.Clone(t.names), ends: slices.Clone(t.ends)}
	s := f.search
	s.work.mu.Lock()
	s.work.shared = append(s.work.shared, shared)
	s.work.changed.Broadcast()
	for {
		c, ok := shared.chunkLocked()
		if !ok {
			if shared.busy == 0 {
				break
			}
			s.work.changed.Wait() // for the others' chunks
			continue
		}
		s.work.mu.Unlock()
		f.readChunk(c)
		s.work.mu.Lock()
	}
	s.work.shared = slices.DeleteFunc(s.work.shared, func(t *fdTable) bool { return t == shared })
	s.work.mu.Unlock()
}

// readChunk reads the links of chunk c, taken with chunkLocked, and marks
// it done.
func (f *fdReader) readChunk(c chunk) {
	readable := f.readLinks(c.t, c.from, c.to)
	f.work.mu.Lock()
	c.t.stop = c.t.stop || !readable
	c.t.busy--
	f.work.changed.Broadcast()
	f.work.mu.Unlock()
}

// readLinks reads the links of descriptors [from, to) of t, recording the
// wanted sockets among them (see search.collect for the others). It reports
// whether t's links can be read: false when they are not ours to read.
func (f *fdReader) readLinks(t *fdTable, from, to int) bool {
	start := int32(0)
	if from > 0 {
		start = t.ends[from-1]
	}
	for _, end := range t.ends[from:to] {
		name := &t.names[start]
		start = end
		m, err := readlinkat(t.dirfd, name, f.link)
		if err == syscall.EACCES {
			// The directory opened but its links are not ours to
			// read (an LSM, or a target with more privileges than
			// root here): none of them will be.
			f.denied.Store(true)
			return false
		}
		if err != nil {
			continue // closed since the listing
		}
		ino := socketInode(f.link[:m])
		if ino == 0 {
			continue
		}
		if i, ok := f.want[ino]; ok {
			f.mu.Lock()
			addHolder(&f.entries[i], t.pid)
			f.mu.Unlock()
			continue
		}
		if !f.collect {
			continue
		}
		if l := f.late.Load(); l == nil {
			if ino <= math.MaxUint32 {
				f.met = append(f.met, heldSocket{uint32(ino), int32(t.pid)})
			}
		} else if i, ok := l.want[ino]; ok {
			f.mu.Lock()
			addHolder(&l.entries[i], t.pid)
			f.mu.Unlock()
		}
	}
	return true
}

// fdError sorts the errors of reading a process's fd directory: a process
// that exited is no error, one that is not ours to look into makes the
// sockets not found hidden rather than absent.
func (f *fdReader) fdError(pid int, err error) error {
	switch err {
	case syscall.EACCES, syscall.EPERM:
		f.denied.Store(true)
		return nil
	case syscall.ENOENT, syscall.ESRCH:
		return nil
	}
	return &OpError{Op: "read", Path: f.fdDir(pid), Err: err}
}

// fdDir names the fd directory of process pid, for errors.
func (f *fdReader) fdDir(pid int) string { return f.root + "/" + strconv.Itoa(pid) + "/fd" }

// openat opens the path name (NUL-terminated) relative to directory dirfd.
func openat(dirfd int, name *byte, flags int) (int, error) {
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// readlinkat reads the link name (NUL-terminated) in directory dirfd into
// buf. Unlike syscall.Readlink it takes the name where it lies, in the
// getdents buffer, and allocates nothing.
func readlinkat(dirfd int, name *byte, buf []byte) (int, error) {
	n, _, errno := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(dirfd),
		uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// socketInode returns the inode in a descriptor's link "socket:[12345]", or
// 0 for a descriptor that is not a socket.
func socketInode(link []byte) uint64 {
	const prefix = "socket:["
	if len(link) < len(prefix)+2 || string(link[:len(prefix)]) != prefix || link[len(link)-1] != ']' {
		return 0
	}
	ino, _ := parseDec(link[len(prefix):len(link)-1], 64)
	return ino
}

func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readProcesses reads what Process says of each of pids, on a few workers,
// leaving out the processes that have exited.
func readProcesses(ctx context.Context, root string, pids []int) (map[int]Process, error) {
	if len(pids) == 0 {
		return nil, nil
	}
	var f fileReader
	boot, err := bootTime(&f, root+"/stat")
	if err != nil {
		return nil, err
	}
	procs := make([]Process, len(pids))
	readers := make([]fileReader, workers(len(pids)))
	var stop atomic.Bool
	err = parallel(ctx, len(pids), &stop, func(w, i int) error {
		p, err := readProcess(&readers[w], root, pids[i], boot)
		if gone(err) {
			return nil // PID stays 0
		}
		procs[i] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[int]Process, len(procs))
	users := map[uint32]string{}
	for _, p := range procs {
		if p.PID == 0 {
			continue
		}
		var ok bool
		if p.User, ok = users[p.UID]; !ok {
			p.User = userName(p.UID)
			users[p.UID] = p.User
		}
		m[p.PID] = p
	}
	return m, nil
}

func readProcess(f *fileReader, root string, pid int, boot time.Time) (Process, error) {
	dir := root + "/" + strconv.Itoa(pid)
	p := Process{PID: pid}
	b, err := f.read(dir + "/stat")
	if err != nil {
		return p, err
	}
	if p.Name, p.PPID, p.StartTicks, err = parseStat(b); err != nil {
		return p, &OpError{Op: "parse", Path: dir + "/stat", Err: err}
	}
	p.StartTime = boot.Add(time.Duration(p.StartTicks) * (time.Second / clockTicks))
	if b, err = f.read(dir + "/status"); err != nil {
		return p, err
	}
	p.NamespaceInit = statusNSInit(b)
	if p.UID, err = parseStatusUID(b); err != nil {
		return p, &OpError{Op: "parse", Path: dir + "/status", Err: err}
	}
	// Empty for kernel threads and zombies; cgroup is absent in some
	// sandboxes. Neither is worth failing for.
	if b, err := f.read(dir + "/cmdline"); err == nil {
		p.Cmdline = parseCmdline(b)
	}
	if b, err := f.read(dir + "/cgroup"); err == nil {
		p.Container = containerID(b)
	}
	return p, nil
}

// userName is the name of uid, or uid in decimal where it has none.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// fileReader reads small files under /proc into a buffer it reuses, with
// four system calls a file: os.ReadFile spends as many again (fstat,
// registering with the poller) on each.
type fileReader struct{ buf []byte }

// read returns the content of path, valid until the next read.
func (f *fileReader) read(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &OpError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(f.buf) {
			f.buf = slices.Grow(f.buf, max(4<<10, len(f.buf)))
			f.buf = f.buf[:cap(f.buf)]
		}
		m, err := syscall.Read(fd, f.buf[n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &OpError{Op: "read", Path: path, Err: err}
		case m == 0:
			return f.buf[:n], nil
		}
		n += m
	}
}

// parseStat returns the name (comm), the parent's pid (field 4) and the
// start time in clock ticks (field 22) from /proc/PID/stat. The name is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (name string, ppid int, startTicks uint64, err error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, errors.New("no (comm) field")
	}
	var f [20][]byte // fields 3 (state) to 22 (starttime)
	if n := splitFields(b[end+1:], f[:]); n < len(f) {
		return "", 0, 0, fmt.Errorf("%d fields after comm, want at least %d", n, len(f))
	}
	parent, ok := parseDec(f[1], 31)
	if !ok {
		return "", 0, 0, fmt.Errorf("parent pid %q is not a decimal number", f[1])
	}
	ticks, ok := parseDec(f[19], 64)
	if !ok {
		return "", 0, 0, fmt.Errorf("start time %q is not a decimal number", f[19])
	}
	return string(b[open+1 : end]), int(parent), ticks, nil
}

// parseStatusUID returns the effective uid from /proc/PID/status, whose
// "Uid:" line holds the real, effective, saved and filesystem uids.
func parseStatusUID(b []byte) (uint32, error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		var f [2][]byte
		if splitFields(rest, f[:]) == 2 {
			if uid, ok := parseDec(f[1], 32); ok {
				return uint32(uid), nil
			}
		}
		return 0, fmt.Errorf("malformed %q", line)
	}
	return 0, errors.New("no Uid line")
}

// statusNSInit reports whether the "NSpid:" line of /proc/PID/status, the
// process's PID in each PID namespace it is in, ends in 1: it is the init
// of its own namespace (a container's). Kernels before 4.1 have no such
// line.
func statusNSInit(b []byte) bool {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if rest, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok {
			f := bytes.Fields(rest)
			return len(f) > 1 && string(f[len(f)-1]) == "1"
		}
	}
	return false
}

// parseCmdline splits /proc/PID/cmdline, NUL-terminated arguments.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00") // setproctitle pads with NULs
	if len(b) == 0 {
		return nil
	}
	var args []string
	for arg := range bytes.SplitSeq(b, []byte{0}) {
		args = append(args, string(arg))
	}
	return args
}

// bootTime reads the boot time ("btime", in seconds since the epoch) from
// /proc/stat.
func bootTime(f *fileReader, path string) (time.Time, error) {
	b, err := f.read(path)
	if err != nil {
		return time.Time{}, err
	}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			if sec, ok := parseDec(bytes.TrimSpace(rest), 63); ok {
				return time.Unix(int64(sec), 0), nil
			}
			break
		}
	}
	return time.Time{}, &OpError{Op: "parse", Path: path, Err: errors.New("no btime line")}
}
