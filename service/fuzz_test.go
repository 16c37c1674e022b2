package service

import (
	"testing"
	"unicode/utf8"
)

// The parsers of what peers send are fed anything: they must not panic,
// must not claim a service without evidence, and must keep their text
// valid for JSON and XML. The seed corpus (what real servers and the
// fixtures send) runs in every go test.

func fuzzParser(f *testing.F, parse func([]byte) (Result, bool), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := parse(b)
		if ok && (r.Evidence == "" || r.Confidence == 0) {
			t.Errorf("%q: %+v without evidence", b, r)
		}
		if ok && !utf8.ValidString(r.Evidence) {
			t.Errorf("%q: evidence %q is not UTF-8", b, r.Evidence)
		}
	})
}

func FuzzBanner(f *testing.F) {
	seeds := []string{
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "SSH-1.99-dropbear_2022.83\r\n", "SSH-2.0-\r\n",
		"220 (vsFTPd 3.0.3)\r\n", "220 mail ESMTP Exim 4.96 Mon, 07 Dec 2026\r\n", "220-a\r\n220 b\r\n",
		"500 OOPS: vsftpd: refusing\r\n", "+OK Dovecot (Debian) ready.\r\n",
		"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot (Debian) ready.\r\n",
		"RFB 003.008\n", "@RSYNCD: 31.0 sha512\n", `INFO {"server_id":"x","version":"2.10"}` + "\r\n",
		"\xff\xfd\x18", ":irc NOTICE * :hi\r\n",
		"\x4a\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00", "\x10\x00\x00\x00\xff\x6a\x04Host is not allowed MariaDB",
	}
	fuzzParser(f, func(b []byte) (Result, bool) {
		for _, d := range detectors() {
			if d.banner != nil {
				if r, ok := d.banner(b); ok {
					return r, ok
				}
			}
		}
		return Result{}, false
	}, seeds...)
}

func FuzzReplies(f *testing.F) {
	seeds := []string{
		"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 5\r\n\r\nhello",
		"\x70\x6b\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03\xc0\x0c\x00\x10\x00\x03\x00\x00\x00\x00\x00\x0d\x0cdnsmasq-2.90",
		"\x01\x01\x00\x08\x21\x12\xa4\x42portkit-stun\x80\x22\x00\x03abc\x00",
		"\x24\x02\x06\xec\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00portkit!\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x70\x6b\x00\x00\x00\x01\x00\x00VERSION 1.6.18\r\n",
		"\x30\x2a\x02\x01\x01\x04\x06public\xa2\x1d\x02\x01\x00\x02\x01\x00\x02\x01\x00\x30\x12\x30\x10\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x04\x04Linu",
		"\x16\x00\x00\x00\x10\x00\x00\x00version\x00x\x00\x00\x00",
	}
	fuzzParser(f, func(b []byte) (Result, bool) {
		parseHTTP(b)
		httpDone(b)
		respDone(b)
		smtpReplyDone(b)
		ldapDone(b)
		mqttPublish(b)
		amqpTable(b)
		parseBSON(b)
		pgFields(b)
		for _, p := range []func([]byte) (Result, bool){parseDNSVersion, parseSTUN, parseNTP, parseMemcachedUDP, parseSNMP} {
			if r, ok := p(b); ok {
				return r, ok
			}
		}
		return Result{}, false
	}, seeds...)
}

// FuzzEscape: escape keeps any bytes printable.
func FuzzEscape(f *testing.F) {
	f.Add([]byte("\x00\xff\r\nabc\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := escape(b, 96)
		for _, c := range []byte(s) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("escape(%q) = %q holds a control byte", b, s)
			}
		}
		if !utf8.ValidString(s) {
			t.Fatalf("escape(%q) = %q is not UTF-8", b, s)
		}
	})
}
