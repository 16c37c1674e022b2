//go:build linux

// Command synfloor measures the floor of a full-range SYN scan of one host:
// the least a scanner must do. It sends one SYN to each of ports 1–65535
// as fast as its senders' sendmmsg go, reads the answers from rawnet's
// receive ring, and writes one JSON Lines result per port (open, closed, or
// filtered for no answer), as `portkit scan -o jsonl` does, so that the
// scan benchmark (bench/scan.sh) times and scores it beside portkit and
// nmap. It keeps no state but a bitmap, never retransmits, and stops when
// every port has answered or -wait after its last probe.
//
// Its wall time, from the start of the process to its exit, is what the
// kernel's share costs in the fixture: building and routing each SYN, the
// target's handling of it and its answer, and the answer's way back, all
// of which a veth pair runs in the sender's system call, plus opening and
// closing the raw and packet sockets. No scanner that reads its answers
// through the same kernel can be faster by much.
//
//	synfloor [-senders 2] [-wait 1s] ADDRESS
//
// It needs root or CAP_NET_RAW, and Linux. It is part of the benchmark, not
// of portkit.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/scan/internal/rawnet"
	"golang.org/x/sys/unix"
)

func main() {
	senders := flag.Int("senders", 2, "goroutines writing SYNs, each with its own raw socket")
	wait := flag.Duration("wait", time.Second, "how long to wait for answers after the last SYN")
	batch := flag.Int("batch", 256, "SYNs per sendmmsg")

	flag.Parse()
	if flag.NArg() != 1 || *senders < 1 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "usage: synfloor [-senders N] [-wait D] [-batch N] ADDRESS")
		os.Exit(2)
	}
	dst, err := netip.ParseAddr(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "synfloor:", err)
		os.Exit(2)
	}
	if err := run(dst.Unmap(), *senders, *batch, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "synfloor:", err)
		os.Exit(1)
	}
}

const ports = 65535

func run(dst netip.Addr, nsend, batch int, wait time.Duration) error {
	route, err := rawnet.LookupRoute(dst)
	if err != nil {
		return err
	}
	src := route.Src
	res, err := rawnet.ReservePort(0)
	if err != nil {
		return err
	}
	defer res.Close()
	rx, err := rawnet.NewReceiver(rawnet.ReceiverConfig{Port: res.Port})
	if err != nil {
		return err
	}
	defer rx.Close()
	var txs []*rawnet.Sender
	for range nsend {
		tx, err := rawnet.NewSender()
		if err != nil {
			return err
		}
		defer tx.Close()
		txs = append(txs, tx)
	}
	var key [16]byte
	rand.Read(key[:])

	// The receiver marks each port's first valid answer.
	var state [ports + 1]atomic.Uint32 // 0 none, 1 open, 2 closed
	var answered atomic.Int64
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rxErr error
	var rxDone sync.WaitGroup
	handle := func(r *rawnet.Reply, _ time.Time) {
		f := r.Flow()
		if f.Proto != rawnet.ProtoTCP || f.Local.Port() != res.Port || f.Remote.Addr() != dst || !rawnet.ValidCookie(key, r) {
			return
		}
		st := uint32(2)
		switch r.Kind() {
		case rawnet.KindSynAck:
			st = 1
		case rawnet.KindReset:
		default:
			return
		}
		if state[f.Remote.Port()].CompareAndSwap(0, st) && answered.Add(1) == ports {
			close(all)
		}
	}
	rxDone.Go(func() { rxErr = rx.Run(ctx, handle) })

	// Each sender takes every nsend-th port.
	var wg sync.WaitGroup
	errs := make([]error, nsend)
	for k, tx := range txs {
		wg.Go(func() {
			pkts := make([][]byte, batch)
			dsts := make([]netip.Addr, batch)
			for i := range pkts {
				pkts[i] = make([]byte, 0, 64)
				dsts[i] = dst
			}
			n := 0
			flush := func() {
				for off := 0; off < n; {
					m, err := tx.Send(pkts[off:n], dsts[off:n])
					off += m
					switch {
					case err == nil:
					case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN):
						time.Sleep(50 * time.Microsecond) // a full device queue
					default:
						off++ // skipped: it shows as no answer
					}
				}
				n = 0
			}
			for p := 1 + k; p <= ports; p += nsend {
				seq := rawnet.Cookie(key, src, dst, res.Port, uint16(p))
				var err error
				pkts[n], err = rawnet.AppendTCP(pkts[n][:0], rawnet.TCP{
					Src: netip.AddrPortFrom(src, res.Port), Dst: netip.AddrPortFrom(dst, uint16(p)),
					Seq: seq, Flags: rawnet.FlagSYN, Window: 1024, MSS: 1460, ID: uint16(seq >> 16),
				})
				if err != nil {
					errs[k] = err
					return
				}
				if n++; n == batch {
					flush()
				}
			}
			flush()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	select {
	case <-all:
	case <-time.After(wait):
	}
	cancel()
	rxDone.Wait()
	if rxErr != nil {
		return rxErr
	}

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	ip := dst.String()
	for p := 1; p <= ports; p++ {
		st := "filtered"
		switch state[p].Load() {
		case 1:
			st = "open"
		case 2:
			st = "closed"
		}
		out.WriteString(`{"ip":"` + ip + `","port":` + strconv.Itoa(p) + `,"protocol":"tcp","state":"` + st + `"}` + "\n")
	}
	return out.Flush()
}
