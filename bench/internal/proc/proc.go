// Package proc starts and stops the servers, forwarders and daemons of the
// benchmarks, and reads what /proc says of them (CPU, RSS, fds, listening
// sockets). Shared by bench/cmd/fwdbench and bench/cmd/knockbench.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Proc is a server or forwarder started for a benchmark, in a process group
// of its own so that Stop takes its children (socat's forks) with it.
type Proc struct {
	name string
	argv []string
	cmd  *exec.Cmd
	log  string        // file receiving its stdout and stderr
	done chan struct{} // closed once it has exited and been reaped
	err  error         // Wait's result, once done is closed
}

// Start starts argv with its output in a log file under dir.
func Start(name string, argv []string, dir string) (*Proc, error) {
	p := &Proc{name: name, argv: argv, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	setProcessGroup(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogFile is the file receiving its stdout and stderr.
func (p *Proc) LogFile() string { return p.log }

func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, waits up to 5 s for the process
// to end, then kills the group. It is safe to call more than once.
func (p *Proc) Stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	signalGroup(p.cmd, false)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	// Whatever is left of the group (forked children that outlived their
	// parent) goes too.
	signalGroup(p.cmd, true)
	<-p.done
}

// Failure describes a process that died or misbehaved, with the end of its
// log.
func (p *Proc) Failure(what string) error {
	msg := fmt.Sprintf("%s %s", p.name, what)
	if p.Exited() {
		msg += fmt.Sprintf(" (it exited: %v)", p.err)
	}
	if b, err := os.ReadFile(p.log); err == nil && len(b) > 0 {
		if len(b) > 2048 {
			b = b[len(b)-2048:]
		}
		msg += "; its output ends with:\n" + strings.TrimRight(string(b), "\n")
	}
	return fmt.Errorf("%s", msg)
}

// WaitListening polls /proc/net until a socket of proto ("tcp" or "udp")
// is bound to port (TCP: listening), giving up after timeout or when p (if
// not nil) exits. It makes no connection, so the servers behind a
// forwarder see none.
func WaitListening(ctx context.Context, p *Proc, proto string, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := Listening(proto, port)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p != nil && p.Exited() {
			return p.Failure(fmt.Sprintf("exited before listening on %s port %d", proto, port))
		}
		if time.Now().After(deadline) {
			if p != nil {
				return p.Failure(fmt.Sprintf("was not listening on %s port %d within %v", proto, port, timeout))
			}
			return fmt.Errorf("nothing listening on %s port %d within %v", proto, port, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Listening reads /proc/net/PROTO and /proc/net/PROTO6 for a socket on
// port: in state LISTEN (0A) for TCP, any bound socket for UDP.
func Listening(proto string, port int) (bool, error) {
	found := false
	for _, file := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			if os.IsNotExist(err) && strings.HasSuffix(file, "6") {
				continue // no IPv6
			}
			return false, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 {
				continue
			}
			_, hexPort, ok := strings.Cut(f[1], ":")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || int(n) != port {
				continue
			}
			if proto == "udp" || f[3] == "0A" {
				found = true
			}
		}
	}
	return found, nil
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTimes is what /proc/PID/stat says of a process's CPU use.
type CPUTimes struct {
	Self     time.Duration // utime + stime
	Children time.Duration // cutime + cstime: its children that have exited and been waited for
}

func (t CPUTimes) Total() time.Duration { return t.Self + t.Children }

// ReadCPU reads /proc/PID/stat.
func ReadCPU(pid int) (CPUTimes, error) {
	f, err := statFields(pid)
	if err != nil {
		return CPUTimes{}, err
	}
	// Fields after the command name, counted from 3 (state) as in proc(5):
	// utime 14, stime 15, cutime 16, cstime 17.
	var v [4]int64
	for i := range v {
		v[i], err = strconv.ParseInt(f[14-3+i], 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("/proc/%d/stat: field %d: %v", pid, 14+i, err)
		}
	}
	tick := time.Second / clockTicks
	return CPUTimes{Self: time.Duration(v[0]+v[1]) * tick, Children: time.Duration(v[2]+v[3]) * tick}, nil
}

// statFields returns the fields of /proc/PID/stat after the command name,
// the first being the state (field 3 in proc(5)).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name is in parentheses and may hold blanks and
	// parentheses itself: the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// Children lists the processes whose parent is pid, zombies included: a
// child disappears from /proc only once its parent has waited for it, and
// only then do its CPU times count in the parent's cutime and cstime.
func Children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(n)
		if err != nil {
			continue // gone meanwhile
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			kids = append(kids, n)
		}
	}
	return kids
}

// WaitChildless waits up to timeout until pid has no child left, so that
// the CPU of the forks that served a run has been added to its cutime.
func WaitChildless(ctx context.Context, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		kids := Children(pid)
		if len(kids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still has %d children after %v", pid, len(kids), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StatusKB reads a "Key: value kB" line of /proc/PID/status, in bytes.
func StatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %s: %v", pid, key, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}

// FDCounts counts the open file descriptors of pid by kind: "socket",
// "pipe", "anon_inode" or "file".
func FDCounts(pid int) (map[string]int, int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	kinds := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		kind := "file"
		for _, k := range []string{"socket", "pipe", "anon_inode"} {
			if strings.HasPrefix(target, k+":") {
				kind = k
			}
		}
		kinds[kind]++
	}
	return kinds, len(ents), nil
}

// TreeCPU is the CPU a process has used: its own, that of its children
// which have exited and been waited for, and that of its live children
// (socat's forks, the commands a knock daemon runs).
func TreeCPU(pid int) (time.Duration, error) {
	t, err := ReadCPU(pid)
	if err != nil {
		return 0, err
	}
	total := t.Total()
	for _, k := range Children(pid) {
		if kt, err := ReadCPU(k); err == nil {
			total += kt.Total()
		}
	}
	return total, nil
}
