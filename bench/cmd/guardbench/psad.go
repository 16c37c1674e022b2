//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// psadPrefix marks the iptables LOG lines of the target namespace.
const psadPrefix = "PKGUARD "

// psadRules logs, in the target namespace, what psad's documentation has a
// firewall log: inbound packets neither of a connection under way nor to an
// open service. Nothing is dropped (the other detectors need the answers).
func (c config) psadRules(ctx context.Context, open []uint16) error {
	rules := [][]string{{"-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"}}
	for _, p := range open {
		rules = append(rules, []string{"-A", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(int(p)), "-j", "ACCEPT"})
	}
	rules = append(rules, []string{"-A", "INPUT", "-i", c.tns, "-j", "LOG", "--log-prefix", psadPrefix, "--log-tcp-options", "--log-ip-options"})
	for _, r := range rules {
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.tns, "iptables"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s: %s", strings.Join(r, " "), out)
		}
	}
	return nil
}

// copyKmsg appends the kernel's log lines carrying psadPrefix (the target
// namespace's, with net.netfilter.nf_log_all_netns=1) to file, as syslogd
// writes them, where psad reads them; until ctx ends.
func copyKmsg(ctx context.Context, file string) error {
	k, err := os.Open("/dev/kmsg")
	if err != nil {
		return err
	}
	if _, err := k.Seek(0, io.SeekEnd); err != nil {
		k.Close()
		return err
	}
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		k.Close()
		return err
	}
	go func() { <-ctx.Done(); k.Close() }()
	go func() {
		defer out.Close()
		buf := make([]byte, 8192)
		for {
			n, err := k.Read(buf) // one record a read
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue // EPIPE: records overwritten meanwhile
			}
			rec := string(buf[:n])
			i := strings.IndexByte(rec, ';')
			if i < 0 || !strings.Contains(rec, psadPrefix) {
				continue
			}
			msg := strings.TrimRight(rec[i+1:], "\n")
			if j := strings.IndexByte(msg, '\n'); j >= 0 {
				msg = msg[:j]
			}
			fmt.Fprintf(out, "%s bench kernel: %s\n", time.Now().Format(time.Stamp), msg)
		}
	}()
	return nil
}

// startPsad runs psad in the foreground in the target namespace, its
// syslog ours as scanlogd's is.
func (c config) startPsad(ctx context.Context, logFile string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", c.tns, "sh", "-c",
		`set -e; for d in null zero urandom random; do : > "$1/$d"; mount --bind /dev/$d "$1/$d"; done; mount --bind "$1" /dev; exec psad -c "$2" --no-daemon`,
		"sh", c.devdir, c.psadConf)
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { cmd.Wait(); f.Close() }()
	return cmd, nil
}

// parsePsad reads psad's syslog line "scan detected (STYLE): SRC -> DST
// ... DL: N ..." into an alert.
func parsePsad(at time.Time, body string) (alert, bool) {
	i := strings.Index(body, "scan detected")
	if i < 0 {
		return alert{}, false
	}
	body = body[i:]
	rest := body
	if j := strings.Index(rest, ": "); j >= 0 {
		rest = rest[j+2:]
	}
	sc := bufio.NewScanner(strings.NewReader(rest))
	sc.Split(bufio.ScanWords)
	if !sc.Scan() {
		return alert{}, false
	}
	src := sc.Text()
	// The kind: psad's name for the scan where it gives one, and the flags.
	var kind []string
	if strings.HasPrefix(body, "scan detected (") {
		if j := strings.Index(body, "):"); j >= 0 {
			kind = append(kind, body[len("scan detected ("):j])
		}
	}
	if j := strings.Index(body, "flags: "); j >= 0 {
		flags, _, _ := strings.Cut(body[j+7:], " tcp pkts")
		kind = append(kind, "flags "+flags)
	} else if strings.Contains(body, "udp pkts") {
		kind = append(kind, "udp")
	}
	return alert{at: at, src: src, kind: strings.Join(kind, ", "), line: body}, true
}
