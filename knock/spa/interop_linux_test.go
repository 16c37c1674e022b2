//go:build linux

package spa

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
)

// TestInteropStockClient: a packet made by the stock fwknop client
// (`fwknop -T -B FILE`: built and saved, never sent) decodes here with
// the fields asked for.
func TestInteropStockClient(t *testing.T) {
	fwknop := testtool.Need(t, "fwknop")
	keys, err := Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		check func(*testing.T, *Message)
	}{
		{"access", nil, func(t *testing.T, m *Message) {
			if m.Type != AccessMsg || m.Message != "198.18.0.1,tcp/22" {
				t.Errorf("type %v message %q", m.Type, m.Message)
			}
		}},
		{"client timeout", []string{"-f", "300"}, func(t *testing.T, m *Message) {
			if m.Type != ClientTimeoutAccessMsg || m.ClientTimeout != 300 {
				t.Errorf("type %v timeout %d", m.Type, m.ClientTimeout)
			}
		}},
		{"nat", []string{"-N", "198.18.0.9:2222"}, func(t *testing.T, m *Message) {
			if m.Type != NATAccessMsg || m.NATAccess != "198.18.0.9,2222" {
				t.Errorf("type %v nat %q", m.Type, m.NATAccess)
			}
		}},
		{"sha512 digest, sha384 hmac", []string{"-m", "sha512", "--hmac-digest-type", "sha384"}, func(t *testing.T, m *Message) {
			if m.Digest != SHA512 {
				t.Errorf("digest %v", m.Digest)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pktFile := filepath.Join(dir, "pkt")
			k := keys
			args := []string{"--no-rc-file", "--no-home-dir", "-E", filepath.Join(dir, "run"),
				"-T", "-B", pktFile, "-D", "198.18.0.2", "-A", "tcp/22", "-a", "198.18.0.1",
				"-U", "alice", "--use-hmac",
				"--key-base64-rijndael", keys.EncryptionBase64(), "--key-base64-hmac", keys.HMACBase64()}
			args = append(args, tc.args...)
			for i, a := range tc.args {
				if a == "--hmac-digest-type" {
					k.HMACDigest, _ = ParseDigest(tc.args[i+1])
				}
			}
			before := time.Now().Add(-time.Second).Truncate(time.Second)
			cmd := exec.Command(fwknop, args...)
			cmd.Env = append(os.Environ(), "HOME="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("fwknop: %v\n%s", err, out)
			}
			b, err := os.ReadFile(pktFile)
			if err != nil {
				t.Fatal(err)
			}
			pkt := bytes.TrimSpace(b)
			m, err := Decode(pkt, k)
			if err != nil {
				t.Fatalf("decode %s: %v", pkt, err)
			}
			if m.Username != "alice" || m.Version != "3.0.0" || m.Timestamp.Before(before) || m.Timestamp.After(time.Now()) {
				t.Errorf("decoded %+v", m)
			}
			tc.check(t, m)
			// A wrong HMAC key is told as such.
			wrong := k
			wrong.HMAC = append([]byte{}, k.HMAC...)
			wrong.HMAC[0] ^= 1
			if _, err := Decode(pkt, wrong); !errorIs(err, ErrBadHMAC) {
				t.Errorf("wrong HMAC key: %v", err)
			}
		})
	}
}

// TestInteropStockServer: packets made by Encode are accepted by the stock
// fwknopd. fwknopd reads them from a pcap file written here (--pcap-file)
// in test mode (--test: no firewall change), inside a network namespace
// of the test's own so that nothing it might do touches the host; its log
// must tell that the SPA packet authenticated and was granted.
func TestInteropStockServer(t *testing.T) {
	fwknopd := testtool.Need(t, "fwknopd")
	pair := netnstest.New(t, "spa")
	keys, err := Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Now()
	var frames [][]byte
	msgs := []Message{
		{Username: "alice", Timestamp: now, Type: AccessMsg, Message: "198.18.0.1,tcp/22"},
		{Username: "bob", Timestamp: now, Type: ClientTimeoutAccessMsg, Message: "198.18.0.1,udp/53", ClientTimeout: 45},
	}
	for _, m := range msgs {
		pkt, err := Encode(m, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, udpFrame([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 40000, 62201, pkt))
	}
	// A packet under other keys, which fwknopd must refuse: the log
	// checks below tell acceptance from refusal.
	other, err := Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := Encode(Message{Username: "mallory", Timestamp: now, Type: AccessMsg, Message: "198.18.0.1,tcp/22"}, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, udpFrame([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 40001, 62201, forged))
	pcap := filepath.Join(dir, "spa.pcap")
	if err := os.WriteFile(pcap, pcapFile(frames, now), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "fwknopd.conf")
	access := filepath.Join(dir, "access.conf")
	write(t, conf, "ENABLE_SPA_PACKET_AGING Y;\nMAX_SPA_PACKET_AGE 120;\n")
	write(t, access, "SOURCE ANY\nOPEN_PORTS tcp/22, udp/53\nKEY_BASE64 "+keys.EncryptionBase64()+
		"\nHMAC_KEY_BASE64 "+keys.HMACBase64()+"\nFW_ACCESS_TIMEOUT 30\n")
	cmd := exec.Command("ip", "netns", "exec", pair.Target, fwknopd,
		"--foreground", "--test", "--verbose", "--verbose",
		"--pcap-file", pcap, "-c", conf, "-a", access,
		"-d", filepath.Join(dir, "digest.cache"), "-p", filepath.Join(dir, "fwknopd.pid"),
		"-r", dir, "--packet-limit", "3")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("fwknopd still running after 30s:\n%s", out.String())
	}
	log := out.String()
	t.Logf("fwknopd: %v\n%s", err, log)
	// fwknopd says "SPA Decode (res=0)" once a packet's HMAC, decryption
	// and digest are good, and, in test mode, "skipping firewall
	// manipulation" where it would open the firewall: after the stanza's
	// checks (ports, age, ...) passed.
	for _, want := range []string{
		"Username: alice", "Message String: 198.18.0.1,tcp/22",
		"Username: bob", "Message String: 198.18.0.1,udp/53", "Client Timeout: 45",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("fwknopd's log does not show %q", want)
		}
	}
	if n := strings.Count(log, "SPA Decode (res=0)"); n != 2 {
		t.Errorf("fwknopd decoded %d packets, want 2", n)
	}
	if n := strings.Count(log, "skipping firewall manipulation"); n != 2 {
		t.Errorf("fwknopd granted %d packets, want 2", n)
	}
	if strings.Contains(log, "mallory") || !strings.Contains(log, "HMAC_COMPAREFAIL") {
		t.Error("fwknopd did not refuse the packet under other keys for its HMAC")
	}
}

func errorIs(err, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// udpFrame is an Ethernet frame of an IPv4 UDP datagram (UDP checksum 0:
// none, as IPv4 allows).
func udpFrame(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	f := make([]byte, 14+20+8, 14+20+8+len(payload))
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[6] = 0x40 // don't fragment
	ip[8], ip[9] = 64, 17
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return append(f, payload...)
}

// pcapFile is a classic pcap file (microsecond stamps, Ethernet links)
// holding frames.
func pcapFile(frames [][]byte, at time.Time) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)     // thiszone
	b = le.AppendUint32(b, 0)     // sigfigs
	b = le.AppendUint32(b, 65535) // snaplen
	b = le.AppendUint32(b, 1)     // LINKTYPE_ETHERNET
	for _, f := range frames {
		b = le.AppendUint32(b, uint32(at.Unix()))
		b = le.AppendUint32(b, uint32(at.Nanosecond()/1000))
		b = le.AppendUint32(b, uint32(len(f)))
		b = le.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}
