package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
	"github.com/portkit/portkit/knock/replay"
)

// replayMode loads a replay cache file of c.digests digests, as portkit
// knockd does when it starts (replay.Open: read, drop the expired, rewrite),
// and measures the load, the memory it takes in this process, and Seen,
// the look-up every SPA packet costs.
func replayMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	s := benchmd.New(fmt.Sprintf("replay cache of %s digests: load, memory, look-up", benchmd.Count(int64(c.digests))), "one run, in process")
	path := filepath.Join(c.tmp, "knockd.replay")
	now := time.Now()
	if err := writeDigests(path, c.digests, now); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	runtime.GC()
	rssBefore, err := proc.StatusKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc

	t0 := time.Now()
	cache, err := replay.Open(path, replay.Options{})
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	openTook := time.Since(t0)
	if n := cache.Len(); n != c.digests {
		return nil, fmt.Errorf("the cache holds %d digests, want %d", n, c.digests)
	}
	runtime.GC()
	rss, err := proc.StatusKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	runtime.ReadMemStats(&ms)
	heap := int64(ms.HeapAlloc) - int64(heapBefore)

	// Look-ups, half of them hits, in rounds over a fixed set of probes.
	const probes = 1 << 16
	ds := make([][32]byte, probes)
	for i := range ds {
		ds[i] = digestOf(i) // in the cache
		if i%2 == 1 {
			ds[i] = digestOf(c.digests + i) // not
		}
	}
	lookups, hits := 0, 0
	t0 = time.Now()
	for time.Since(t0) < time.Second && ctx.Err() == nil {
		for _, d := range ds {
			if cache.Seen(d) {
				hits++
			}
		}
		lookups += probes
	}
	perLookup := time.Since(t0) / time.Duration(lookups)
	if hits == 0 {
		return nil, fmt.Errorf("no look-up found its digest")
	}

	s.Notes = append(s.Notes, fmt.Sprintf("`bin/knockbench replay` writes a cache file of %s digest lines (%s, every digest dated now, so that none expires), "+
		"loads it with `replay.Open` as `portkit knockd` does at start (read, drop the expired, rewrite the file whole, fsynced), then times `Seen`, "+
		"the look-up each SPA packet costs, over rounds of %s probes, half of them in the cache, for a second. RSS is the process's VmRSS after a GC, "+
		"before and after the load; the heap is what `runtime.MemStats.HeapAlloc` grew by.",
		benchmd.Count(int64(c.digests)), harness.FormatRSS(st.Size()), benchmd.Count(probes)))
	t := &benchmd.Table{Head: []string{"digests", "file", "load (replay.Open)", "RSS before", "RSS after", "RSS added", "heap added", "heap per digest", "look-up (Seen)", "look-ups timed"}}
	t.Row(benchmd.Count(int64(c.digests)), harness.FormatRSS(st.Size()), benchmd.Dur(openTook), harness.FormatRSS(rssBefore), harness.FormatRSS(rss),
		harness.FormatRSS(rss-rssBefore), harness.FormatRSS(heap), fmt.Sprintf("%.0f B", float64(heap)/float64(c.digests)),
		benchmd.Dur(perLookup), benchmd.Count(int64(lookups)))
	s.Tables = append(s.Tables, t.String())
	return s, nil
}

// digestOf is a digest made from i, as different from its neighbours as
// real ones are.
func digestOf(i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// writeDigests writes a cache file of n digests dated at, in the format
// replay.Cache keeps: "<10-digit unix seconds> <64 hex>\n".
func writeDigests(path string, n int, at time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line := make([]byte, 0, 76)
	for i := range n {
		d := digestOf(i)
		line = fmt.Appendf(line[:0], "%010d ", at.Unix())
		line = hex.AppendEncode(line, d[:])
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
