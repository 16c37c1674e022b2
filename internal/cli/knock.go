package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/knock"
	"github.com/portkit/portkit/knock/spa"
	"github.com/portkit/portkit/probe"
)

type knockFlags struct {
	delay   string
	udp     bool
	spa     bool
	open    []string
	keyFile string
	allowIP string
	spaPort int
	user    string
	timeout int

	secretFile  string
	totpPorts   string
	totpLength  int
	totpStep    time.Duration
	totpProto   string
	waitPort    int
	waitTimeout time.Duration
}

func newKnock(e *env) *cobra.Command {
	var kf knockFlags
	cmd := &cobra.Command{
		Use:   "knock HOST PORT[:udp]... | --spa HOST --open PROTO/PORT --key-file FILE [-- CMD ARGS...]",
		Short: "Knock a port sequence or send an SPA packet, to open a port that knockd guards",
		Long: `Knock on HOST's ports in order, as knockd's knock client does: a TCP knock
is a connection attempt abandoned at once (its SYN is the knock), a UDP
knock one empty datagram. PORT is 7000, 7000:udp or 7000/udp; -u makes
every bare port UDP; -d waits between knocks (milliseconds, like knock's
-d, or a duration such as 200ms).

With --spa, send one single packet authorization packet instead, in
fwknop's format (the stock fwknopd accepts it), asking HOST to open
--open for --allow-ip (by default the local address of the route to HOST;
nothing outside is asked). The key file holds KEY_BASE64 and
HMAC_KEY_BASE64 lines, as 'portkit knock keygen' and 'fwknop --key-gen'
print them (HMAC_DIGEST_TYPE may follow).

With --secret-file, knock the sequence derived from a shared secret and
the time, as portkit knockd's [sequence.totp] does: --totp-ports,
--totp-length, --totp-step and --totp-proto must match the server's.

After "--", wait until HOST's --port (by default the first tcp --open
port) answers, then run CMD as 'portkit wait -- CMD' does.`,
		Example: `  portkit knock 198.18.0.2 7000 8000:udp 9000
  portkit knock -d 200 198.18.0.2 7000 8000 9000 -- ssh 198.18.0.2
  portkit knock --spa 198.18.0.2 --open 22/tcp --key-file ~/.portkit/knock.key -- ssh 198.18.0.2
  portkit knock --secret-file ~/.portkit/totp.secret --totp-ports 40000-40999 198.18.0.2 --port 22
  portkit knock keygen > ~/.portkit/knock.key`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runKnock(cmd.Context(), e, cmd, &kf, args)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&kf.delay, "delay", "d", "0", "wait this long between knocks: milliseconds (as knock's -d) or a duration")
	f.BoolVarP(&kf.udp, "udp", "u", false, "knock with UDP where a port names no protocol")
	f.BoolVar(&kf.spa, "spa", false, "send an fwknop SPA packet instead of a sequence")
	f.StringSliceVar(&kf.open, "open", nil, "with --spa: the `PROTO/PORT` to open (22/tcp or tcp/22; repeatable)")
	f.StringVar(&kf.keyFile, "key-file", "", "with --spa: the `FILE` with KEY_BASE64 and HMAC_KEY_BASE64")
	f.StringVar(&kf.allowIP, "allow-ip", "", "with --spa: the `ADDR` to let in (default: the local address of the route to HOST)")
	f.StringVar(&kf.allowIP, "source", "", "the same as --allow-ip")
	f.IntVar(&kf.spaPort, "spa-port", knock.DefaultSPAPort, "with --spa: the UDP `PORT` to send to")
	f.StringVar(&kf.user, "user", "", "with --spa: the user name in the packet (default: $USER, else portkit)")
	f.IntVar(&kf.timeout, "client-timeout", 0, "with --spa: ask for the opening to last this many `SECONDS` (0: the server's)")
	f.StringVar(&kf.secretFile, "secret-file", "", "knock the sequence derived from the base64 secret in this `FILE` and the time")
	f.StringVar(&kf.totpPorts, "totp-ports", "", "with --secret-file: the port `RANGE` (LOW-HIGH) of the sequence")
	f.IntVar(&kf.totpLength, "totp-length", knock.DefaultTOTPLength, "with --secret-file: knocks in the sequence")
	durationVarP(f, &kf.totpStep, "totp-step", "", knock.DefaultTOTPStep, "with --secret-file: how long a sequence lasts")
	f.StringVar(&kf.totpProto, "totp-proto", "tcp", "with --secret-file: tcp or udp")
	f.IntVar(&kf.waitPort, "port", 0, "with -- CMD: the TCP `PORT` on HOST to wait for before running CMD")
	durationVarP(f, &kf.waitTimeout, "timeout", "", 10*time.Second, "with -- CMD: how long to wait for --port to answer")
	cmd.AddCommand(newKnockKeygen(e))
	return cmd
}

// parseDelay reads -d as knock does (milliseconds) or as a duration.
func parseDelay(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usagef("--delay %q: want milliseconds (200) or a duration (200ms)", s)
	}
	return d, nil
}

func runKnock(ctx context.Context, e *env, cmd *cobra.Command, kf *knockFlags, args []string) error {
	var command []string
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		args, command = args[:dash], args[dash:]
		if len(command) == 0 {
			return usagef("knock: no command after --")
		}
	}
	if len(args) == 0 {
		return usagef("knock: no HOST")
	}
	host := args[0]
	if strings.ContainsAny(host, "/ ") || host == "" {
		return usagef("knock: HOST %q: want an address or a name", host)
	}
	delay, err := parseDelay(kf.delay)
	if err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{kf.spa, kf.secretFile != "", len(args) > 1} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return usagef("knock: give PORTs after HOST, or --spa, or --secret-file (one of them)")
	}
	waitPort := kf.waitPort
	if waitPort < 0 || waitPort > 65535 {
		return usagef("--port %d: not 1-65535", waitPort)
	}
	client := &knock.Client{Delay: delay}
	var did string
	switch {
	case kf.spa:
		p, err := kf.sendSPA(ctx, e, client, host)
		if err != nil {
			return err
		}
		did = "sent SPA packet to " + net.JoinHostPort(host, strconv.Itoa(kf.spaPort)) + " for " + p
		if waitPort == 0 {
			for _, o := range kf.open {
				if pp, _ := knock.ParseOpenPort(o); pp.Proto == "tcp" {
					waitPort = int(pp.Port)
					break
				}
			}
		}
	case kf.secretFile != "":
		seq, err := kf.totpSequence(time.Now())
		if err != nil {
			return err
		}
		if err := client.SendSequence(ctx, host, seq); err != nil {
			return sendError(ctx, err)
		}
		did = "knocked " + host + " with the sequence of the current step"
	default:
		def := knock.TCP
		if kf.udp {
			def = knock.UDP
		}
		var seq []knock.Knock
		for _, a := range args[1:] {
			k, err := knock.ParseKnock(a, def)
			if err != nil {
				return usagef("knock: PORT %q: want 7000, 7000:udp or 7000/tcp", a)
			}
			seq = append(seq, k)
		}
		if err := client.SendSequence(ctx, host, seq); err != nil {
			return sendError(ctx, err)
		}
		did = "knocked " + host + ": " + knock.FormatSequence(seq)
	}
	if command == nil {
		if e.json {
			return e.printer().JSON(map[string]string{"host": host, "done": did})
		}
		fmt.Fprintln(e.Out, did)
		return nil
	}
	e.warnf("%s", did)
	if waitPort == 0 {
		return usagef("knock: -- CMD needs --port PORT to wait for")
	}
	target, err := probe.ParseTarget(net.JoinHostPort(host, strconv.Itoa(waitPort)))
	if err != nil {
		return usagef("knock: --port %d on %q: %v", waitPort, host, err)
	}
	if _, err := probe.Wait(ctx, []probe.Target{target}, probe.WaitOptions{Timeout: kf.waitTimeout}); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: ExitTimeout, err: fmt.Errorf("knock: %s did not open within %v", target, kf.waitTimeout)}
		}
		return err
	}
	return runAfter(ctx, e, command)
}

func sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &exitError{code: ExitInterrupted, err: errors.New("knock: interrupted")}
	}
	return &exitError{code: ExitNegative, err: err}
}

// sendSPA builds and sends the packet; it returns what it asked for.
func (kf *knockFlags) sendSPA(ctx context.Context, e *env, client *knock.Client, host string) (string, error) {
	if len(kf.open) == 0 {
		return "", usagef("knock --spa: need --open PROTO/PORT")
	}
	if kf.keyFile == "" {
		return "", usagef("knock --spa: need --key-file FILE")
	}
	if kf.spaPort < 1 || kf.spaPort > 65535 {
		return "", usagef("--spa-port %d: not 1-65535", kf.spaPort)
	}
	if kf.timeout < 0 || kf.timeout > spa.MaxClientTimeout {
		return "", usagef("--client-timeout %d: not 0-%d", kf.timeout, spa.MaxClientTimeout)
	}
	var acc spa.Access
	for _, o := range kf.open {
		p, err := knock.ParseOpenPort(o)
		if err != nil {
			return "", usagef("--open %q: want 22/tcp or tcp/22", o)
		}
		acc.Ports = append(acc.Ports, p)
	}
	keys, err := knock.ReadKeyFile(kf.keyFile)
	if err != nil {
		return "", usagef("--key-file %s: %v", kf.keyFile, err)
	}
	if kf.allowIP != "" {
		a, err := netip.ParseAddr(kf.allowIP)
		if err != nil || a.Zone() != "" {
			return "", usagef("--allow-ip %q: not an IP address", kf.allowIP)
		}
		acc.Addr = a.Unmap()
	} else {
		a, err := knock.LocalAddrFor(ctx, host, uint16(kf.spaPort))
		if err != nil {
			return "", &exitError{code: ExitNegative, err: fmt.Errorf("knock: no route to %s to take the local address from (give --allow-ip): %w", host, err)}
		}
		acc.Addr = a
	}
	user := kf.user
	if user == "" && e.Getenv != nil {
		user = e.Getenv("USER")
	}
	if user == "" {
		user = "portkit"
	}
	m := spa.Message{Username: user, Timestamp: time.Now(), Type: spa.AccessMsg, Message: acc.String()}
	if kf.timeout > 0 {
		m.Type, m.ClientTimeout = spa.ClientTimeoutAccessMsg, kf.timeout
	}
	pkt, err := spa.Encode(m, keys, nil)
	if err != nil {
		return "", usagef("knock --spa: %v", err)
	}
	if err := client.SendSPA(ctx, host, uint16(kf.spaPort), pkt); err != nil {
		return "", sendError(ctx, err)
	}
	return acc.String(), nil
}

func (kf *knockFlags) totpSequence(now time.Time) ([]knock.Knock, error) {
	secret, err := knock.ReadSecretFile(kf.secretFile)
	if err != nil {
		return nil, usagef("--secret-file %s: %v", kf.secretFile, err)
	}
	if kf.totpPorts == "" {
		return nil, usagef("knock --secret-file: need --totp-ports LOW-HIGH (the server's [sequence.totp] ports)")
	}
	low, high, err := knock.ParsePortRange(kf.totpPorts)
	if err != nil {
		return nil, usagef("--totp-ports %q: want LOW-HIGH, 1 <= LOW < HIGH <= 65535", kf.totpPorts)
	}
	t := knock.TOTP{Secret: secret, Low: low, High: high, Length: kf.totpLength, Step: kf.totpStep}
	switch kf.totpProto {
	case "tcp":
		t.Proto = knock.TCP
	case "udp":
		t.Proto = knock.UDP
	default:
		return nil, usagef("--totp-proto %q: want tcp or udp", kf.totpProto)
	}
	if err := t.Check(); err != nil {
		return nil, usagef("knock --secret-file: %v", err)
	}
	return t.At(now), nil
}

func newKnockKeygen(e *env) *cobra.Command {
	var totp bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new SPA key pair (or a TOTP secret) in base64",
		Long: `Print a new random Rijndael key (32 bytes) and HMAC key (64 bytes) in
base64, as 'fwknop --key-gen' does:

  KEY_BASE64: ...
  HMAC_KEY_BASE64: ...

Saved to a file, that is the client's --key-file; the same two values go
in the server's stanza (key_base64 and hmac_key_base64 in knockd's TOML,
KEY_BASE64 and HMAC_KEY_BASE64 in fwknop's access.conf). With --totp,
print a 32-byte secret instead, for --secret-file and [sequence.totp]'s
secret_base64.`,
		Example: `  portkit knock keygen > ~/.portkit/knock.key
  portkit knock keygen --totp > ~/.portkit/totp.secret`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			keys, err := spa.Keygen(nil)
			if err != nil {
				return err
			}
			if totp {
				if e.json {
					return e.printer().JSON(map[string]string{"secret_base64": keys.EncryptionBase64()})
				}
				fmt.Fprintln(e.Out, keys.EncryptionBase64())
				return nil
			}
			if e.json {
				return e.printer().JSON(map[string]string{"key_base64": keys.EncryptionBase64(), "hmac_key_base64": keys.HMACBase64()})
			}
			fmt.Fprintf(e.Out, "KEY_BASE64: %s\nHMAC_KEY_BASE64: %s\n", keys.EncryptionBase64(), keys.HMACBase64())
			return nil
		}),
	}
	cmd.Flags().BoolVar(&totp, "totp", false, "print a TOTP secret instead of an SPA key pair")
	return cmd
}
