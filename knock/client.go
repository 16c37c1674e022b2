package knock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/knock/spa"
)

// DefaultKnockWait is how long a TCP knock waits for its connection
// before abandoning it: the SYN is on the wire as soon as the connect
// starts, and a port that the firewall drops would keep it waiting.
const DefaultKnockWait = 100 * time.Millisecond

// Client sends knocks and SPA packets. The zero value works.
type Client struct {
	// Delay is the pause between knocks (knock's -d).
	Delay time.Duration
	// KnockWait bounds each TCP knock's connection attempt;
	// DefaultKnockWait when 0.
	KnockWait time.Duration
	// Dialer dials; a zero net.Dialer when nil.
	Dialer *net.Dialer
}

// SendSequence knocks host (an IP address or a name) with seq, as
// knockd's knock client does: a TCP knock is a connection attempt,
// abandoned after KnockWait; a UDP knock is one empty datagram.
func (c *Client) SendSequence(ctx context.Context, host string, seq []Knock) error {
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	wait := c.KnockWait
	if wait <= 0 {
		wait = DefaultKnockWait
	}
	for i, k := range seq {
		if i > 0 && c.Delay > 0 {
			t := time.NewTimer(c.Delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		addr := net.JoinHostPort(host, strconv.Itoa(int(k.Port)))
		if k.Proto == UDP {
			conn, err := d.DialContext(ctx, "udp", addr)
			if err != nil {
				return fmt.Errorf("knock %s: %w", addr+"/udp", err)
			}
			_, err = conn.Write(nil)
			conn.Close()
			if err != nil {
				return fmt.Errorf("knock %s: %w", addr+"/udp", err)
			}
			continue
		}
		kctx, cancel := context.WithTimeout(ctx, wait)
		conn, err := d.DialContext(kctx, "tcp", addr)
		cancel()
		if err == nil {
			conn.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Refused or timed out: the SYN went out, which is the knock.
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return fmt.Errorf("knock %s: %w", addr, err)
		}
	}
	return nil
}

// SendSPA sends one SPA packet to host:port over UDP.
func (c *Client) SendSPA(ctx context.Context, host string, port uint16, pkt []byte) error {
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("send SPA to %s: %w", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write(pkt); err != nil {
		return fmt.Errorf("send SPA to %s: %w", addr, err)
	}
	return nil
}

// LocalAddrFor is the local address the route to host uses: what a
// server sees as the source of packets from here, unless a NAT is in
// between. It sends nothing (a UDP socket connected, never written) and
// asks no outside service.
func LocalAddrFor(ctx context.Context, host string, port uint16) (netip.Addr, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	ap, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// ReadKeyFile reads a key file: lines "NAME value" or "NAME: value"
// (what `fwknop --key-gen` and `portkit knock keygen` print), '#'
// comments. KEY_BASE64 and HMAC_KEY_BASE64 are required.
func ReadKeyFile(path string) (spa.Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return spa.Keys{}, err
	}
	defer f.Close()
	return ParseKeyFile(f, path)
}

// ParseKeyFile parses a key file's contents; name is for errors.
func ParseKeyFile(r io.Reader, name string) (spa.Keys, error) {
	var k spa.Keys
	sc := bufio.NewScanner(io.LimitReader(r, 1<<16))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val := line, ""
		if i := strings.IndexAny(line, ":= \t"); i >= 0 {
			key, val = line[:i], line[i+1:]
		}
		val = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(val), ":="))
		var err error
		switch strings.ToUpper(key) {
		case "KEY_BASE64":
			k.Encryption, err = spa.DecodeKeyBase64(val)
		case "HMAC_KEY_BASE64":
			k.HMAC, err = spa.DecodeKeyBase64(val)
		case "HMAC_DIGEST_TYPE":
			k.HMACDigest, err = spa.ParseDigest(val)
		default:
			err = errors.New("unknown line: want KEY_BASE64, HMAC_KEY_BASE64 or HMAC_DIGEST_TYPE")
		}
		if err != nil {
			return spa.Keys{}, fmt.Errorf("%s:%d: %s: %w", name, n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return spa.Keys{}, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case len(k.Encryption) == 0:
		return spa.Keys{}, fmt.Errorf("%s: no KEY_BASE64 line", name)
	case len(k.HMAC) == 0:
		return spa.Keys{}, fmt.Errorf("%s: no HMAC_KEY_BASE64 line", name)
	}
	return k, nil
}

// ReadSecretFile reads a TOTP secret: base64 on the first line that is
// not empty or a '#' comment.
func ReadSecretFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		s, err := spa.DecodeKeyBase64(l)
		if err != nil {
			return nil, fmt.Errorf("%s: the secret is not base64: %w", path, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s: no secret in the file", path)
}
