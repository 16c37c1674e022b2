package forward

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTCPChurn is bench/forward.sh's churn case in one process, for
// profiling the per-connection cost (go test -bench TCPChurn -cpuprofile):
// short HTTP/1.0-like connections, 50 at a time, through a rule with the
// CLI's defaults and a text log.
func BenchmarkTCPChurn(b *testing.B) {
	const (
		request  = "GET / HTTP/1.0\r\n\r\n"
		response = "HTTP/1.0 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, world\n"
	)
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				got := 0
				for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) && got < len(buf) {
					n, err := c.Read(buf[got:])
					if err != nil {
						return
					}
					got += n
				}
				io.WriteString(c, response)
			}()
		}
	}()
	fw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer fw.Shutdown(context.Background())
	if err := fw.Reload([]Rule{{Name: "churn", Listen: "127.0.0.1:0", Targets: []string{srv.Addr().String()}}}); err != nil {
		b.Fatal(err)
	}
	addr := fw.Addr(TCP, "127.0.0.1:0").String()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for next.Add(1) <= int64(b.N) {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					b.Error(err)
					return
				}
				io.WriteString(c, request)
				n, _ := io.ReadFull(c, buf[:len(response)])
				c.Close()
				if n != len(response) {
					b.Errorf("read %d bytes, want %d", n, len(response))
					return
				}
			}
		}()
	}
	wg.Wait()
}
