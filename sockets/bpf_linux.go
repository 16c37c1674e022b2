package sockets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The descriptor search through a BPF iterator: a small program attached
// to the kernel's task_file iterator (Linux 5.8+) is run once for every
// open file of every process, inside the kernel, and writes the process,
// descriptor and inode of each socket to the iterator's file, which is
// read here. It replaces one readlink per descriptor through /proc (some
// microseconds each) by one pass in the kernel. It needs CAP_BPF and
// CAP_PERFMON, or CAP_SYS_ADMIN (root), and the kernel's BTF; any failure
// means the /proc search instead.

// vmlinuxBTF is where the kernel describes its own types.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// heldRecord is what the program writes for each socket descriptor.
type heldRecord struct {
	pid   uint32 // task->tgid: a PID as the initial PID namespace numbers it
	fd    uint32
	inode uint64
}

const heldRecordLen = 16

// bpfError is a failure of the BPF descriptor search, which then falls
// back to /proc: Op is the step (read BTF, load, attach, iterate, check).
type bpfError struct {
	Op  string
	Err error
}

func (e *bpfError) Error() string { return "bpf " + e.Op + ": " + e.Err.Error() }
func (e *bpfError) Unwrap() error { return e.Err }

// bpfLayout is what the program needs from the running kernel's BTF.
type bpfLayout struct {
	iterFunc uint32 // the BTF id of bpf_iter_task_file, the attach point
	// Offsets in bpf_iter__task_file, the program's context.
	ctxMeta, ctxTask, ctxFd, ctxFile uint32
	metaSeq                          uint32 // bpf_iter_meta.seq
	fileInode                        uint32 // file.f_inode
	inodeMode, inodeModeSize         uint32 // inode.i_mode
	inodeIno, inodeInoSize           uint32 // inode.i_ino
	taskTgid, taskTgidSize           uint32 // task_struct.tgid
}

// readLayout finds the layout in the BTF blob of a kernel.
func readLayout(blob []byte) (bpfLayout, error) {
	wants := []btfWant{
		{btfKindFunc, "bpf_iter_task_file"},
		{btfKindStruct, "bpf_iter__task_file"},
		{btfKindStruct, "bpf_iter_meta"},
		{btfKindStruct, "file"},
		{btfKindStruct, "inode"},
		{btfKindStruct, "task_struct"},
	}
	s, ids, err := parseBTF(blob, wants)
	if err != nil {
		return bpfLayout{}, err
	}
	for i, id := range ids {
		if id == 0 {
			return bpfLayout{}, fmt.Errorf("%w: no %s in the kernel's BTF", errBTF, wants[i].name)
		}
	}
	var l bpfLayout
	l.iterFunc = ids[0]
	var ptr uint32
	for _, f := range []struct {
		id    uint32
		name  string
		off   *uint32
		size  *uint32
		sizes []uint32 // the sizes the program can load
	}{
		{ids[1], "meta", &l.ctxMeta, &ptr, []uint32{8}},
		{ids[1], "task", &l.ctxTask, &ptr, []uint32{8}},
		{ids[1], "fd", &l.ctxFd, new(uint32), []uint32{4}},
		{ids[1], "file", &l.ctxFile, &ptr, []uint32{8}},
		{ids[2], "seq", &l.metaSeq, &ptr, []uint32{8}},
		{ids[3], "f_inode", &l.fileInode, &ptr, []uint32{8}},
		{ids[4], "i_mode", &l.inodeMode, &l.inodeModeSize, []uint32{2, 4}},
		{ids[4], "i_ino", &l.inodeIno, &l.inodeInoSize, []uint32{4, 8}},
		{ids[5], "tgid", &l.taskTgid, &l.taskTgidSize, []uint32{4}},
	} {
		off, size, err := s.member(f.id, f.name)
		if err != nil {
			return bpfLayout{}, err
		}
		if !slices.Contains(f.sizes, size) || off > 1<<15-8 {
			return bpfLayout{}, fmt.Errorf("%w: field %s of %d bytes at %d", errBTF, f.name, size, off)
		}
		*f.off, *f.size = off, size
	}
	return l, nil
}

// kernelLayout reads the layout from the BTF file at path, mapped in
// memory where the kernel allows it (recent kernels do): read, sysfs hands
// it over 4 KiB per system call, 1,300 calls and 9–20 ms here for its
// 5 MB.
func kernelLayout(path string) (bpfLayout, error) {
	f, err := os.Open(path)
	if err != nil {
		return bpfLayout{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return bpfLayout{}, err
	}
	if size := fi.Size(); size > 0 && size < 1<<30 {
		if blob, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE); err == nil {
			defer syscall.Munmap(blob)
			return readLayout(blob)
		}
	}
	blob, err := io.ReadAll(f)
	if err != nil {
		return bpfLayout{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return readLayout(blob)
}

// BPF instructions, as the kernel's uapi linux/bpf.h encodes them.
const (
	bpfLdxW  = 0x61 // dst = *(u32 *)(src + off)
	bpfLdxH  = 0x69
	bpfLdxDW = 0x79
	bpfStxW  = 0x63 // *(u32 *)(dst + off) = src
	bpfStxDW = 0x7b
	bpfMovK  = 0xb7 // dst = imm, 64 bits
	bpfMovX  = 0xbf // dst = src
	bpfAddK  = 0x07
	bpfAndK  = 0x57
	bpfJeqK  = 0x15 // if dst == imm goto pc+1+off
	bpfJneK  = 0x55
	bpfCall  = 0x85
	bpfExit  = 0x95

	bpfFuncSeqWrite = 127 // long bpf_seq_write(struct seq_file *, const void *, u32)

	sIFMT   = 0o170000
	sIFSOCK = 0o140000
)

type bpfInsn struct {
	op   uint8
	regs uint8 // dst in the low nibble, src in the high
	off  int16
	imm  int32
}

func insn(op uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{op: op, regs: dst | src<<4, off: off, imm: imm}
}

// ldx loads size bytes; readLayout admits only the sizes below (any
// other would leave the opcode 0, which the verifier refuses).
func ldx(size uint32, dst, src uint8, off uint32) bpfInsn {
	var op uint8
	switch size {
	case 2:
		op = bpfLdxH
	case 4:
		op = bpfLdxW
	case 8:
		op = bpfLdxDW
	}
	return insn(op, dst, src, int16(off), 0)
}

// program is, in C:
//
//	struct file *f = ctx->file; struct task_struct *t = ctx->task;
//	if (!t || !f || !f->f_inode || (f->f_inode->i_mode & S_IFMT) != S_IFSOCK) return 0;
//	struct { u32 pid, fd; u64 ino; } r = { t->tgid, ctx->fd, f->f_inode->i_ino };
//	bpf_seq_write(ctx->meta->seq, &r, sizeof r);
//	return 0;
func (l bpfLayout) program() []bpfInsn {
	const r0, r1, r2, r3, r6, r7, r8, r9, fp = 0, 1, 2, 3, 6, 7, 8, 9, 10
	p := []bpfInsn{
		insn(bpfMovX, r6, r1, 0, 0),
		ldx(8, r7, r6, l.ctxTask),
		insn(bpfJeqK, r7, 0, -1, 0), // jumps patched to the exit below
		ldx(8, r8, r6, l.ctxFile),
		insn(bpfJeqK, r8, 0, -1, 0),
		ldx(8, r9, r8, l.fileInode),
		insn(bpfJeqK, r9, 0, -1, 0),
		ldx(l.inodeModeSize, r2, r9, l.inodeMode),
		insn(bpfAndK, r2, 0, 0, sIFMT),
		insn(bpfJneK, r2, 0, -1, sIFSOCK),
		ldx(l.inodeInoSize, r2, r9, l.inodeIno),
		insn(bpfStxDW, fp, r2, -8, 0),
		ldx(l.taskTgidSize, r2, r7, l.taskTgid),
		insn(bpfStxW, fp, r2, -16, 0),
		ldx(4, r2, r6, l.ctxFd),
		insn(bpfStxW, fp, r2, -12, 0),
		ldx(8, r1, r6, l.ctxMeta),
		ldx(8, r1, r1, l.metaSeq),
		insn(bpfMovX, r2, fp, 0, 0),
		insn(bpfAddK, r2, 0, 0, -heldRecordLen),
		insn(bpfMovK, r3, 0, 0, heldRecordLen),
		insn(bpfCall, 0, 0, 0, bpfFuncSeqWrite),
		insn(bpfMovK, r0, 0, 0, 0),
		insn(bpfExit, 0, 0, 0, 0),
	}
	exit := len(p) - 2
	for i := range p {
		if p[i].off == -1 && (p[i].op == bpfJeqK || p[i].op == bpfJneK) {
			p[i].off = int16(exit - i - 1)
		}
	}
	return p
}

// bpf(2) commands and constants.
const (
	bpfProgLoad       = 5
	bpfLinkCreate     = 28
	bpfIterCreate     = 33
	bpfProgTypeTrace  = 26 // BPF_PROG_TYPE_TRACING
	bpfAttachTraceIt  = 28 // BPF_TRACE_ITER
	bpfAttrSize       = 128
	bpfObjNameLen     = 16
	bpfLogSize        = 4096
	bpfVerifierLogLvl = 1
)

// bpfRetries bounds the retries of a bpf(2) call interrupted by a signal
// (or, for a load, told to try again by a verifier that was interrupted).
const bpfRetries = 5

func bpfSyscall(cmd int, attr *[bpfAttrSize]byte) (int, error) {
	var errno syscall.Errno
	for range bpfRetries {
		var fd uintptr
		fd, _, errno = unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(attr)), bpfAttrSize)
		if errno == syscall.EINTR || errno == syscall.EAGAIN && cmd == bpfProgLoad {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
	return -1, errno
}

// loadProgram loads the program for the task_file iterator; a refusal by
// the verifier comes back with the last line of its log.
func loadProgram(l bpfLayout) (int, error) {
	prog := l.program()
	license := []byte("GPL\x00") // bpf_seq_write is for GPL programs
	var attr [bpfAttrSize]byte
	ne := binary.NativeEndian
	// union bpf_attr for BPF_PROG_LOAD, field by field.
	ne.PutUint32(attr[0:], bpfProgTypeTrace)                              // prog_type
	ne.PutUint32(attr[4:], uint32(len(prog)))                             // insn_cnt
	ne.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&prog[0]))))     // insns
	ne.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0])))) // license
	copy(attr[48:48+bpfObjNameLen-1], "portkit_fds")                      // prog_name
	ne.PutUint32(attr[68:], bpfAttachTraceIt)                             // expected_attach_type
	ne.PutUint32(attr[108:], l.iterFunc)                                  // attach_btf_id
	fd, err := bpfSyscall(bpfProgLoad, &attr)
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err == nil || !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EINVAL) {
		return fd, err
	}
	// Again with the verifier's log, to say why.
	log := make([]byte, bpfLogSize)
	ne.PutUint32(attr[24:], bpfVerifierLogLvl)                        // log_level
	ne.PutUint32(attr[28:], uint32(len(log)))                         // log_size
	ne.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&log[0])))) // log_buf
	if _, err2 := bpfSyscall(bpfProgLoad, &attr); err2 == nil {
		return -1, err // accepted the second time: keep the first answer
	}
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	return -1, fmt.Errorf("%w: %s", err, lastLine(log))
}

// lastLine is the last line of the verifier's NUL-terminated log.
func lastLine(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, "\n")
	return string(b[bytes.LastIndexByte(b, '\n')+1:])
}

// bpfSockets returns a record for every descriptor of every process that
// is a socket, read through a task_file iterator. It fails unless the
// records hold the socket it opens for the purpose under this process's
// PID and descriptor: in a PID namespace of its own the iterator numbers
// processes otherwise.
func bpfSockets(btfPath string) ([]heldRecord, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return nil, &bpfError{Op: "check", Err: errors.New("not a 64-bit process")}
	}
	// The iterator numbers processes as the initial PID namespace does;
	// /proc numbers them as this process's does. The initial one's inode
	// number is fixed (PROC_PID_INIT_INO), so any other namespace is told
	// apart here, before the self-check below, which a PID that happens to
	// be the same in both would pass.
	if ns, err := os.Readlink("/proc/self/ns/pid"); err != nil || ns != initPIDNamespace {
		return nil, &bpfError{Op: "check", Err: fmt.Errorf("not in the initial PID namespace (%q)", ns)}
	}
	layout, err := kernelLayout(btfPath)
	if err != nil {
		return nil, &bpfError{Op: "read BTF", Err: err}
	}
	prog, err := loadProgram(layout)
	if err != nil {
		return nil, &bpfError{Op: "load", Err: err}
	}
	defer syscall.Close(prog)
	var attr [bpfAttrSize]byte
	ne := binary.NativeEndian
	ne.PutUint32(attr[0:], uint32(prog))     // link_create.prog_fd
	ne.PutUint32(attr[8:], bpfAttachTraceIt) // link_create.attach_type; no iter_info
	link, err := bpfSyscall(bpfLinkCreate, &attr)
	if err != nil {
		return nil, &bpfError{Op: "attach", Err: err}
	}
	defer syscall.Close(link)
	// The socket that proves the records right, open while they are made.
	probe, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &bpfError{Op: "check", Err: err}
	}
	defer syscall.Close(probe)
	var st syscall.Stat_t
	if err := syscall.Fstat(probe, &st); err != nil {
		return nil, &bpfError{Op: "check", Err: err}
	}
	attr = [bpfAttrSize]byte{}
	ne.PutUint32(attr[0:], uint32(link)) // iter_create.link_fd
	iter, err := bpfSyscall(bpfIterCreate, &attr)
	if err != nil {
		return nil, &bpfError{Op: "iterate", Err: err}
	}
	defer syscall.Close(iter)
	recs, err := readRecords(func(b []byte) (int, error) { return syscall.Read(iter, b) })
	if err != nil {
		return nil, &bpfError{Op: "iterate", Err: err}
	}
	self := heldRecord{pid: uint32(os.Getpid()), fd: uint32(probe), inode: st.Ino}
	if !containsRecord(recs, self) {
		return nil, &bpfError{Op: "check", Err: fmt.Errorf("own socket (pid %d, fd %d, inode %d) not among %d records", self.pid, self.fd, self.inode, len(recs))}
	}
	return recs, nil
}

// initPIDNamespace is /proc/self/ns/pid in the initial PID namespace: its
// inode number is PROC_PID_INIT_INO, 0xEFFFFFFC, in every kernel.
const initPIDNamespace = "pid:[4026531836]"

func containsRecord(recs []heldRecord, r heldRecord) bool {
	for _, x := range recs {
		if x == r {
			return true
		}
	}
	return false
}

// maxRecordBytes bounds what is read from an iterator: 16 million socket
// descriptors, far more than any host holds.
const maxRecordBytes = 256 << 20

// recordSource is read(2) on an iterator's file.
type recordSource func([]byte) (int, error)

// readRecords reads an iterator's output to its end.
func readRecords(read recordSource) ([]heldRecord, error) {
	buf := make([]byte, 64<<10)
	var recs []heldRecord
	var part []byte // a record split across reads
	total, interrupted := 0, 0
	for {
		n, err := read(buf)
		if err == syscall.EINTR && interrupted < bpfRetries {
			interrupted++
			continue
		}
		if err != nil {
			return nil, err
		}
		interrupted = 0 // bounds interruptions in a row
		if n == 0 {
			break
		}
		if total += n; total > maxRecordBytes {
			return nil, fmt.Errorf("more than %d bytes of records", maxRecordBytes)
		}
		b := buf[:n]
		if len(part) > 0 {
			need := heldRecordLen - len(part)
			if need > len(b) {
				part = append(part, b...)
				continue
			}
			part = append(part, b[:need]...)
			recs = append(recs, decodeRecord(part))
			part, b = part[:0], b[need:]
		}
		for len(b) >= heldRecordLen {
			recs = append(recs, decodeRecord(b))
			b = b[heldRecordLen:]
		}
		part = append(part, b...)
	}
	if len(part) > 0 {
		return nil, fmt.Errorf("%d bytes past the last whole record", len(part))
	}
	return recs, nil
}

func decodeRecord(b []byte) heldRecord {
	ne := binary.NativeEndian
	return heldRecord{pid: ne.Uint32(b), fd: ne.Uint32(b[4:]), inode: ne.Uint64(b[8:])}
}

// bpfCapable reports whether this process may load and run a tracing
// program: CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON (Linux 5.8+).
// Asked first, so that others pay nothing for the attempt.
func bpfCapable() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_SYS_ADMIN) || has(unix.CAP_BPF) && has(unix.CAP_PERFMON)
}
