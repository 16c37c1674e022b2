package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzRead checks that Read never panics, that it reports every failure as
// an *Error, that it consumes exactly one header, and that whatever it
// accepts formats back into a header it reads the same way.
func FuzzRead(f *testing.F) {
	for _, c := range readCases {
		f.Add([]byte(c.in))
	}
	for _, c := range badReadCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nafter"))
	f.Add([]byte("PROXY TCP6 ::ffff:1.2.3.4 ::1 65535 0\r\n"))
	f.Add([]byte(v2(0x21, 0x12, inetBlock, tlv(0x20, "\x01\x00\x00\x00\x00"+tlv(0x21, "TLSv1.3")))))
	f.Add([]byte(v2(0x21, 0x22, inet6Block, tlv(0x03, "\x00\x00\x00\x00"))))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		br := bufio.NewReaderSize(r, 16)
		h, err := Read(br)
		consumed := len(data) - r.Len() - br.Buffered()
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Read(%q) error %v is not an *Error", data, err)
			}
			if errors.Is(err, ErrNoHeader) && consumed != 0 {
				t.Fatalf("Read(%q) = %v after consuming %d bytes", data, err, consumed)
			}
			return
		}
		switch h.Version {
		case 1:
			if consumed > maxV1Len || !bytes.HasSuffix(data[:consumed], []byte("\r\n")) {
				t.Fatalf("Read(%q) consumed %q", data, data[:consumed])
			}
		case 2:
			if want := v2HeaderLen + int(binary.BigEndian.Uint16(data[14:16])); consumed != want {
				t.Fatalf("Read(%q) consumed %d bytes, the header has %d", data, consumed, want)
			}
		default:
			t.Fatalf("Read(%q) = %+v: bad Version", data, h)
		}

		for _, version := range []int{1, 2} {
			b, err := h.Format(version)
			if version == 1 && (h.Transport == UDP4 || h.Transport == UDP6 || len(h.TLVs) > 0) {
				if err == nil {
					t.Fatalf("Format(1) of %+v = %q, want an error", h, b)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Read(%q) = %+v, which does not format as v%d: %v", data, h, version, err)
			}
			if version == 1 && len(b) > maxV1Len {
				t.Fatalf("Format(1) of %+v = %q, %d bytes", h, b, len(b))
			}
			r2 := bytes.NewReader(append(b, "payload"...))
			br2 := bufio.NewReader(r2)
			h2, err := Read(br2)
			want := with(h, version, h.TLVs...)
			if version == 1 && h.Transport == Unspec {
				want.Command = Local // v1 has only UNKNOWN
			}
			if err != nil || !equalHeader(h2, want) {
				t.Fatalf("Read(%q) = %+v;\nformatted as v%d %q, it reads %+v, %v", data, h, version, b, h2, err)
			}
			if left := r2.Len() + br2.Buffered(); left != len("payload") {
				t.Fatalf("reading %q left %d bytes, want %d", b, left, len("payload"))
			}
		}
	})
}
