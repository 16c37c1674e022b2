package guard

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestAttemptJSON: the attempt line written without reflection is the one
// encoding/json writes, byte for byte, and costs no allocation.
func TestAttemptJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 30, 1, 123456789, time.FixedZone("x", 3600))
	v4, v6 := netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("2001:2::1")
	cases := []Attempt{
		{Time: at, Flow: Flow{Src: v4, Dst: local4, SrcPort: 40000, DstPort: 22, Proto: TCP}, Flags: SYN, TTL: 64, Answer: AnswerRST},
		{Time: at, Flow: Flow{Src: v4, Dst: local4, SrcPort: 1, DstPort: 65535, Proto: TCP}, Flags: 0, TTL: 255, Answer: AnswerDropped, Suppressed: 3, SuppressedAll: 70000},
		{Time: at, Flow: Flow{Src: v4, Dst: local4, SrcPort: 53, DstPort: 161, Proto: UDP}, TTL: 1, Answer: AnswerICMP},
		{Time: at, Flow: Flow{Src: v6, Dst: v6, SrcPort: 9, DstPort: 9, Proto: ICMP}, Flags: 128, Answer: AnswerNone},
		{Time: at, Flow: Flow{Src: v6, Dst: v6, Proto: Proto(47)}, Answer: AnswerNone},
		{Time: at, Flow: Flow{Src: netip.MustParseAddr("::ffff:198.18.0.1"), Dst: v6.WithZone(`e"th\0`), Proto: TCP}, Flags: FIN | PSH | URG, Answer: AnswerAccepted},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a := Attempt{Time: time.Unix(r.Int64N(4e9), r.Int64N(1e9)), Flags: uint8(r.UintN(256)), TTL: uint8(r.UintN(256)),
			Answer:     []Answer{AnswerRST, AnswerICMP, AnswerDropped, AnswerNone, AnswerAccepted, AnswerHalfOpen}[r.IntN(6)],
			Suppressed: r.IntN(3) * r.IntN(1000), SuppressedAll: r.IntN(2) * r.IntN(1<<20)}
		a.Flow = Flow{Src: netip.AddrFrom4([4]byte{byte(r.UintN(256)), 1, 2, byte(r.UintN(256))}), Dst: v6,
			SrcPort: uint16(r.UintN(65536)), DstPort: uint16(r.UintN(65536)), Proto: []Proto{TCP, UDP, ICMP}[r.IntN(3)]}
		cases = append(cases, a)
	}
	for _, a := range cases {
		got, want := appendAttempt(nil, &a), appendAttemptReflect(nil, &a)
		if !bytes.Equal(got, want) {
			t.Fatalf("attempt %+v:\n got %s\nwant %s", a, got, want)
		}
	}
	buf := make([]byte, 0, 512)
	a := cases[1]
	if n := testing.AllocsPerRun(100, func() { buf = appendAttempt(buf[:0], &a) }); n != 0 {
		t.Errorf("appendAttempt allocates %.0f times, want 0", n)
	}
}

// writes records each Write.
type writes struct{ calls []string }

func (w *writes) Write(b []byte) (int, error) {
	w.calls = append(w.calls, string(b))
	return len(b), nil
}

// TestJSONLinesHoldsAttempts: attempt lines wait for Flush, an alert, or
// the bound, and then go out together, in order, as whole lines; an alert
// is written, and synced, at once.
func TestJSONLinesHoldsAttempts(t *testing.T) {
	w := &writes{}
	syncs := 0
	j := NewJSONLines(w, func() error { syncs++; return nil })
	att := &Attempt{Time: t0, Flow: Flow{Src: scan4, Dst: local4, SrcPort: 40000, DstPort: 22, Proto: TCP}, Flags: SYN, TTL: 64, Answer: AnswerRST}
	for range 3 {
		if err := j.Event(Event{Attempt: att}); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.calls) != 0 {
		t.Fatalf("%d writes before Flush, want none", len(w.calls))
	}
	j.Flush()
	j.Flush()
	if len(w.calls) != 1 || strings.Count(w.calls[0], "\n") != 3 || syncs != 0 {
		t.Fatalf("after Flush: writes %q, %d syncs; want one write of 3 lines, no sync", w.calls, syncs)
	}
	j.Event(Event{Attempt: att})
	j.Event(Event{Alert: &Alert{ID: 1, Phase: PhaseStart, Time: t0, Start: t0, Last: t0}})
	if len(w.calls) != 2 || !strings.HasPrefix(w.calls[1], `{"time"`) || !strings.Contains(w.calls[1], "}\n{") ||
		!strings.Contains(w.calls[1], `"event":"scan"`) || syncs != 1 {
		t.Fatalf("after an alert: writes %q, %d syncs; want the attempt and the alert in one write, synced", w.calls, syncs)
	}
	w.calls = nil
	for len(w.calls) == 0 {
		j.Event(Event{Attempt: att})
	}
	if n := len(w.calls[0]); n < jsonLinesHeld || n > jsonLinesHeld+512 || !strings.HasSuffix(w.calls[0], "}\n") {
		t.Fatalf("held back %d bytes before writing, want about %d, whole lines", n, jsonLinesHeld)
	}
}
