package service

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
)

// Line-oriented protocols whose servers speak first or answer a text
// command: SSH, FTP, SMTP, POP3, IMAP, VNC, rsync, NATS, IRC, Telnet,
// Redis, memcached, ZooKeeper.

// sshDetector reads the identification string of RFC 4253 §4.2,
// "SSH-protoversion-softwareversion SP comments": the server may send
// other lines before it.
var sshDetector = &detector{name: "ssh", ports: []uint16{22, 2222}, banner: parseSSH}

func parseSSH(b []byte) (Result, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if !strings.HasPrefix(line, "SSH-") {
			continue
		}
		rest := line[4:]
		proto, rest, ok := strings.Cut(rest, "-")
		if !ok {
			return Result{}, false
		}
		software, comments, _ := strings.Cut(rest, " ")
		r := Result{Service: "ssh", Confidence: 10, Evidence: quote(line), Info: "protocol " + proto}
		product, version, _ := strings.Cut(software, "_")
		switch strings.ToLower(product) {
		case "openssh":
			r.Product = "OpenSSH"
		case "dropbear":
			r.Product = "Dropbear sshd"
		default:
			r.Product = product
		}
		r.Version = version
		if comments != "" {
			r.Info += ", " + comments
		}
		return r, true
	}
	return Result{}, false
}

// quote is a line of evidence as printable text.
func quote(s string) string { return escape([]byte(s), 200) }

// smtpReplyDone reports a whole SMTP or FTP reply (RFC 5321 §4.2.1, RFC
// 959 §4.2): lines "NNN-text" and a last "NNN text".
func smtpReplyDone(b []byte) bool {
	if !lineDone(b) {
		return false
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	last := strings.TrimRight(lines[len(lines)-1], "\r")
	return len(last) >= 3 && isDigits(last[:3]) && (len(last) == 3 || last[3] == ' ')
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// ftpSMTPDetector reads a "220" greeting, which FTP (RFC 959) and SMTP
// (RFC 5321) share; the greeting's words, or the reply to EHLO, tell them
// apart. STARTTLS (RFC 3207) and AUTH TLS (RFC 4217) are followed where
// offered, for the certificate.
var ftpSMTPDetector = &detector{name: "ftp/smtp", ports: []uint16{21, 25, 465, 587, 2525},
	banner: parse220, after: after220}

type bannerPatterns struct{ vsftpd, proftpd, exim, sendmail, filezilla *regexp.Regexp }

// bannerREs are the product patterns of FTP and SMTP greetings, compiled on
// first use, not at package init.
var bannerREs = sync.OnceValue(func() *bannerPatterns {
	return &bannerPatterns{
		vsftpd:    regexp.MustCompile(`\(vsFTPd ([0-9][\w.]*)\)`),
		proftpd:   regexp.MustCompile(`ProFTPD(?: ([0-9][\w.]*))? Server`),
		exim:      regexp.MustCompile(`ESMTP Exim ([0-9][\w.]*)`),
		sendmail:  regexp.MustCompile(`Sendmail ([0-9][\w.]*)`),
		filezilla: regexp.MustCompile(`FileZilla Server(?: version)? ([0-9][\w.]*)`),
	}
})

func parse220(b []byte) (Result, bool) {
	line := firstLine(b)
	if strings.HasPrefix(line, "500 OOPS: ") {
		// vsftpd's own form of a fatal error, sent in place of its
		// greeting when its configuration refuses every session.
		return Result{Service: "ftp", Product: "vsftpd", Confidence: 8, Evidence: quote(line)}, true
	}
	if !strings.HasPrefix(line, "220") || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		return Result{}, false
	}
	r := Result{Confidence: 8, Evidence: quote(line)}
	text := string(b)
	re := bannerREs()
	switch {
	case re.vsftpd.MatchString(text):
		r.Service, r.Product, r.Version = "ftp", "vsftpd", re.vsftpd.FindStringSubmatch(text)[1]
	case re.proftpd.MatchString(text):
		r.Service, r.Product, r.Version = "ftp", "ProFTPD", re.proftpd.FindStringSubmatch(text)[1]
	case strings.Contains(text, "Pure-FTPd"):
		r.Service, r.Product = "ftp", "Pure-FTPd"
	case re.filezilla.MatchString(text):
		r.Service, r.Product, r.Version = "ftp", "FileZilla Server", re.filezilla.FindStringSubmatch(text)[1]
	case re.exim.MatchString(text):
		r.Service, r.Product, r.Version = "smtp", "Exim", re.exim.FindStringSubmatch(text)[1]
	case strings.Contains(text, "ESMTP Postfix"):
		r.Service, r.Product = "smtp", "Postfix"
	case strings.Contains(text, "OpenSMTPD"):
		r.Service, r.Product = "smtp", "OpenSMTPD"
	case re.sendmail.MatchString(text):
		r.Service, r.Product, r.Version = "smtp", "Sendmail", re.sendmail.FindStringSubmatch(text)[1]
	case strings.Contains(strings.ToUpper(text), "SMTP"):
		r.Service = "smtp"
	case strings.Contains(strings.ToUpper(text), "FTP"):
		r.Service = "ftp"
	}
	if r.Product != "" {
		r.Confidence = 10
	}
	return r, true
}

func after220(s *session, r *Result) {
	if !smtpReplyDone(s.buf) {
		s.read(s.t.replyWait(), smtpReplyDone) // the rest of a multi-line greeting
	}
	s.reset()
	if r.Service != "ftp" {
		reply := string(s.exchange([]byte("EHLO portkit.invalid\r\n"), smtpReplyDone))
		switch {
		case strings.HasPrefix(reply, "250"):
			r.Service = "smtp"
			if strings.Contains(strings.ToUpper(reply), "STARTTLS") {
				s.reset()
				if strings.HasPrefix(string(s.exchange([]byte("STARTTLS\r\n"), smtpReplyDone)), "220") {
					upgrade(s, r, "smtp")
				}
			}
			return
		case r.Service == "":
			r.Service = "ftp" // a 220 greeting that does not know EHLO
		default:
			return
		}
	}
	s.reset()
	if strings.HasPrefix(string(s.exchange([]byte("AUTH TLS\r\n"), smtpReplyDone)), "234") {
		upgrade(s, r, "ftp")
	}
}

// upgrade runs the TLS handshake a STARTTLS command agreed to.
func upgrade(s *session, r *Result, proto string) {
	if info, err := s.startTLS(nil); err == nil {
		info.StartTLS = proto
		r.TLS = info
	}
}

// pop3Detector reads the "+OK" greeting of RFC 1939 §4, then CAPA (RFC
// 2449) and STLS (RFC 2595 §4).
var pop3Detector = &detector{name: "pop3", ports: []uint16{110, 995},
	banner: func(b []byte) (Result, bool) {
		line := firstLine(b)
		if !strings.HasPrefix(line, "+OK") {
			return Result{}, false
		}
		r := Result{Service: "pop3", Confidence: 8, Evidence: quote(line)}
		mailProduct(string(b), &r)
		return r, true
	},
	after: func(s *session, r *Result) {
		s.reset()
		capa := string(s.exchange([]byte("CAPA\r\n"), func(b []byte) bool {
			return bytes.HasSuffix(b, []byte("\r\n.\r\n")) || bytes.HasPrefix(b, []byte("-ERR")) && lineDone(b)
		}))
		if strings.Contains(capa, "\nSTLS") {
			s.reset()
			if strings.HasPrefix(string(s.exchange([]byte("STLS\r\n"), lineDone)), "+OK") {
				upgrade(s, r, "pop3")
			}
		}
	}}

// mailProduct names the mail servers whose greetings say who they are.
func mailProduct(greeting string, r *Result) {
	line := greeting
	switch {
	case strings.Contains(line, "Dovecot"):
		r.Product, r.Confidence = "Dovecot", 10
		if strings.Contains(line, "(Debian)") {
			r.Info = "Debian"
		}
	case strings.Contains(line, "Cyrus"):
		r.Product, r.Confidence = "Cyrus IMAP", 10
	case strings.Contains(line, "Courier"):
		r.Product, r.Confidence = "Courier", 10
	}
}

// imapDetector reads the "* OK" greeting of RFC 9051 §7.1 (RFC 3501),
// then STARTTLS (§6.2.1).
var imapDetector = &detector{name: "imap", ports: []uint16{143, 993},
	banner: func(b []byte) (Result, bool) {
		line := firstLine(b)
		if !strings.HasPrefix(line, "* OK") && !strings.HasPrefix(line, "* PREAUTH") {
			return Result{}, false
		}
		r := Result{Service: "imap", Confidence: 8, Evidence: quote(line)}
		mailProduct(string(b), &r)
		return r, true
	},
	after: func(s *session, r *Result) {
		greeting := string(s.buf)
		s.reset()
		if !strings.Contains(greeting, "STARTTLS") {
			caps := string(s.exchange([]byte("a1 CAPABILITY\r\n"), func(b []byte) bool { return bytes.Contains(b, []byte("a1 ")) && lineDone(b) }))
			if !strings.Contains(caps, "STARTTLS") {
				return
			}
			s.reset()
		}
		if strings.HasPrefix(string(s.exchange([]byte("a2 STARTTLS\r\n"), lineDone)), "a2 OK") {
			upgrade(s, r, "imap")
		}
	}}

// vncDetector reads the ProtocolVersion message of RFC 6143 §7.1.1.
var vncDetector = &detector{name: "vnc", ports: []uint16{5900, 5901},
	banner: func(b []byte) (Result, bool) {
		if len(b) < 12 || !bytes.HasPrefix(b, []byte("RFB ")) || b[7] != '.' || b[11] != '\n' {
			return Result{}, false
		}
		major, minor := strings.TrimLeft(string(b[4:7]), "0"), strings.TrimLeft(string(b[8:11]), "0")
		return Result{Service: "vnc", Product: "VNC", Info: "protocol " + major + "." + minor, Confidence: 10,
			Evidence: quote(string(b[:11]))}, true
	}}

// rsyncDetector reads the daemon's greeting, "@RSYNCD: <protocol>",
// which names the protocol version, not the program's.
var rsyncDetector = &detector{name: "rsync", ports: []uint16{873},
	banner: func(b []byte) (Result, bool) {
		line := firstLine(b)
		v, ok := strings.CutPrefix(line, "@RSYNCD: ")
		if !ok {
			return Result{}, false
		}
		proto, _, _ := strings.Cut(v, " ")
		return Result{Service: "rsync", Product: "rsync", Info: "protocol " + proto, Confidence: 10, Evidence: quote(line)}, true
	}}

// natsDetector reads the INFO the NATS server sends on connect (NATS
// client protocol: "INFO {json}\r\n").
var natsDetector = &detector{name: "nats", ports: []uint16{4222},
	banner: func(b []byte) (Result, bool) {
		line := firstLine(b)
		js, ok := strings.CutPrefix(line, "INFO ")
		if !ok {
			return Result{}, false
		}
		var info struct {
			ServerID string `json:"server_id"`
			Version  string `json:"version"`
			Proto    int    `json:"proto"`
		}
		if json.Unmarshal([]byte(js), &info) != nil || info.ServerID == "" {
			return Result{}, false
		}
		return Result{Service: "nats", Product: "NATS Server", Version: info.Version, Confidence: 10,
			Evidence: quote(line[:min(len(line), 120)])}, true
	}}

// ircDetector reads the notices an IRC server (RFC 2812) sends while it
// looks the client up.
var ircDetector = &detector{name: "irc", ports: []uint16{6667, 6697},
	banner: func(b []byte) (Result, bool) {
		line := firstLine(b)
		if strings.HasPrefix(line, "NOTICE AUTH ") || strings.HasPrefix(line, ":") && strings.Contains(line, " NOTICE ") {
			return Result{Service: "irc", Confidence: 8, Evidence: quote(line)}, true
		}
		return Result{}, false
	}}

// telnetDetector recognises the option negotiation a Telnet server (RFC
// 854, RFC 855) opens with: IAC followed by WILL, WONT, DO or DONT.
var telnetDetector = &detector{name: "telnet", ports: []uint16{23},
	banner: func(b []byte) (Result, bool) {
		if len(b) >= 3 && b[0] == 0xff && b[1] >= 0xfb && b[1] <= 0xfe {
			return Result{Service: "telnet", Confidence: 8, Evidence: "option negotiation " + escape(b, 12)}, true
		}
		return Result{}, false
	}}

// redisDetector sends INFO server as an inline command (RESP, "Inline
// commands"); the reply is a bulk string of fields, or an error that is
// itself Redis's (authentication required, protected mode).
var redisDetector = &detector{name: "redis", ports: []uint16{6379, 6380}, probe: func(s *session) (Result, bool) {
	b := s.exchange([]byte("INFO server\r\n"), respDone)
	text := string(b)
	switch {
	case strings.HasPrefix(text, "$"):
		r := Result{Service: "redis", Product: "Redis", Confidence: 10}
		fields := map[string]string{}
		for _, l := range strings.Split(text, "\n") {
			if k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":"); ok {
				fields[k] = v
			}
		}
		r.Version = fields["redis_version"]
		if v := fields["valkey_version"]; v != "" {
			r.Product, r.Version = "Valkey", v
		}
		if r.Version == "" {
			return Result{}, false
		}
		if m := fields["redis_mode"]; m != "" {
			r.Info = m
		}
		r.Evidence = "INFO: redis_version:" + fields["redis_version"]
		return r, true
	case strings.HasPrefix(text, "-NOAUTH"), strings.HasPrefix(text, "-DENIED"), strings.HasPrefix(text, "-ERR operation not permitted"):
		return Result{Service: "redis", Product: "Redis", Confidence: 8, Evidence: quote(firstLine(b))}, true
	}
	return Result{}, false
}}

// respDone reports a whole RESP reply to INFO: an error line, or a bulk
// string of the length its header gives.
func respDone(b []byte) bool {
	if len(b) == 0 || !bytes.Contains(b, []byte("\r\n")) {
		return false
	}
	if b[0] != '$' {
		return true
	}
	head, _, _ := bytes.Cut(b, []byte("\r\n"))
	n := 0
	for _, c := range head[1:] {
		if c < '0' || c > '9' {
			return true
		}
		n = n*10 + int(c-'0')
		if n > 1<<20 {
			return true
		}
	}
	return len(b) >= len(head)+2+n+2
}

// memcachedDetector sends the text protocol's "version" command
// (memcached protocol.txt): "VERSION <version>".
var memcachedDetector = &detector{name: "memcached", ports: []uint16{11211}, probe: func(s *session) (Result, bool) {
	line := firstLine(s.exchange([]byte("version\r\n"), lineDone))
	v, ok := strings.CutPrefix(line, "VERSION ")
	if !ok {
		return Result{}, false
	}
	return Result{Service: "memcached", Product: "memcached", Version: v, Confidence: 10, Evidence: quote(line)}, true
}}

// zookeeperDetector sends the four-letter command "srvr" (ZooKeeper
// Administrator's Guide, "The Four Letter Words").
var zookeeperDetector = &detector{name: "zookeeper", ports: []uint16{2181}, plainOnly: true, probe: func(s *session) (Result, bool) {
	b := s.exchange([]byte("srvr"), nil)
	line := firstLine(b)
	if v, ok := strings.CutPrefix(line, "Zookeeper version: "); ok {
		v, _, _ = strings.Cut(v, ",")
		v, _, _ = strings.Cut(v, "-")
		return Result{Service: "zookeeper", Product: "Apache ZooKeeper", Version: v, Confidence: 10, Evidence: quote(line)}, true
	}
	if strings.Contains(line, "is not executed because it is not in the whitelist") {
		return Result{Service: "zookeeper", Product: "Apache ZooKeeper", Confidence: 8, Evidence: quote(line)}, true
	}
	return Result{}, false
}}
