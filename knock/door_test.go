package knock

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	srcA = netip.MustParseAddr("198.18.0.1")
	srcB = netip.MustParseAddr("198.18.0.3")
	t0   = time.Unix(1_800_000_000, 0)
)

func mustSeq(t *testing.T, s string) []Knock {
	t.Helper()
	seq, err := ParseSequence(s)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

type step struct {
	src   netip.Addr
	knock string
	after time.Duration // since t0
	want  string        // "" nothing, "open", or a Reason
}

func runSteps(t *testing.T, tr *tracker, steps []step) {
	t.Helper()
	for i, s := range steps {
		src := s.src
		if !src.IsValid() {
			src = srcA
		}
		k, err := ParseKnock(s.knock, TCP)
		if err != nil {
			t.Fatal(err)
		}
		outs := tr.knock(src, k, t0.Add(s.after), nil)
		var got []string
		for _, o := range outs {
			if o.Src != src {
				t.Errorf("step %d: outcome for %v, knock from %v", i, o.Src, src)
			}
			if o.Accepted {
				got = append(got, "open")
			} else {
				got = append(got, string(o.Reason))
			}
		}
		want := []string(nil)
		if s.want != "" {
			want = []string{s.want}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d (%s from %v at +%v): got %q, want %q", i, s.knock, src, s.after, got, want)
		}
	}
}

func TestTrackerSequences(t *testing.T) {
	open := "open"
	wrong := string(ReasonWrongSequence)
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{knock: "7000"}, {knock: "8000:udp"}, {knock: "9000", want: open}}},
		{"wrong order", []step{{knock: "8000:udp"}, {knock: "7000"}, {knock: "9000", want: wrong}, {knock: "8000:udp"}}},
		{"wrong protocol", []step{{knock: "7000"}, {knock: "8000", want: wrong}, {knock: "9000"}}},
		{"wrong port breaks, then a fresh start works", []step{
			{knock: "7000"}, {knock: "8000:udp"}, {knock: "1234", want: wrong},
			{knock: "7000"}, {knock: "8000:udp"}, {knock: "9000", want: open}}},
		{"a wrong knock that is the first one starts again", []step{
			{knock: "7000"}, {knock: "8000:udp"}, {knock: "7000", want: wrong},
			{knock: "8000:udp"}, {knock: "9000", want: open}}},
		{"a repeated knock never breaks", []step{
			{knock: "7000"}, {knock: "7000"}, {knock: "8000:udp"}, {knock: "8000:udp"}, {knock: "9000", want: open}}},
		{"the last SYN retransmitted after completion", []step{
			{knock: "7000"}, {knock: "8000:udp"}, {knock: "9000", want: open}, {knock: "9000", after: time.Second}}},
		{"two sources interleaved", []step{
			{knock: "7000"}, {src: srcB, knock: "7000"}, {knock: "8000:udp"}, {src: srcB, knock: "8000:udp"},
			{src: srcB, knock: "9000", want: open}, {knock: "9000", want: open}}},
		{"too slow", []step{
			{knock: "7000"}, {knock: "8000:udp", after: 4 * time.Second}, {knock: "9000", after: 6 * time.Second, want: string(ReasonSeqTimeout)}}},
		{"too slow, then the first knock starts over", []step{
			{knock: "7000"}, {knock: "7000", after: 6 * time.Second, want: string(ReasonSeqTimeout)},
			{knock: "8000:udp", after: 7 * time.Second}, {knock: "9000", after: 8 * time.Second, want: open}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Door{Name: "ssh", SourceAny: true, Sequence: mustSeq(t, "7000,8000:udp,9000"), SeqTimeout: 5 * time.Second}
			runSteps(t, newTracker([]*Door{d}, 0), tc.steps)
		})
	}
}

func TestTrackerSource(t *testing.T) {
	d := &Door{Name: "ssh", Source: []netip.Prefix{netip.MustParsePrefix("198.18.0.3/32")}, Sequence: mustSeq(t, "7000,8000")}
	tr := newTracker([]*Door{d}, 0)
	runSteps(t, tr, []step{{knock: "7000"}, {knock: "8000"}, {src: srcB, knock: "7000"}, {src: srcB, knock: "8000", want: "open"}})
}

// TestTrackerBounded: a flood of sources keeps at most max entries, and
// the oldest go first.
func TestTrackerBounded(t *testing.T) {
	d := &Door{Name: "ssh", SourceAny: true, Sequence: mustSeq(t, "7000,8000,9000")}
	tr := newTracker([]*Door{d}, 100)
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tr.knock(a, Knock{7000, TCP}, t0, nil)
		if tr.Len() > 100 {
			t.Fatalf("%d entries after %d sources", tr.Len(), i+1)
		}
	}
	// srcA knocked long ago is gone; the last sources are still followed.
	last := netip.AddrFrom4([4]byte{10, 0, byte(9999 >> 8), byte(9999 & 0xff)})
	if tr.entries[trackKey{last, 0}] == nil {
		t.Error("the newest source was evicted")
	}
	first := netip.AddrFrom4([4]byte{10, 0, 0, 0})
	if tr.entries[trackKey{first, 0}] != nil {
		t.Error("the oldest source was kept")
	}
}

func TestTOTPTracker(t *testing.T) {
	tp := &TOTP{Secret: []byte("0123456789abcdef0123"), Low: 40000, High: 40999, Length: 4, Step: 30 * time.Second, Proto: TCP}
	d := &Door{Name: "totp", SourceAny: true, TOTP: tp}
	knockAll := func(tr *tracker, seq []Knock, at time.Time) []Outcome {
		var outs []Outcome
		for _, k := range seq {
			outs = tr.knock(srcA, k, at, outs)
		}
		return outs
	}
	accepted := func(outs []Outcome) bool {
		return len(outs) > 0 && outs[len(outs)-1].Accepted
	}
	now := t0.Add(7 * time.Second)
	cur := tp.At(now)
	if err := tp.WithDefaults().Check(); err != nil {
		t.Fatal(err)
	}
	for _, k := range cur {
		if k.Port < 40000 || k.Port > 40999 || k.Proto != TCP {
			t.Fatalf("knock %v outside the range", k)
		}
	}
	if slices.Equal(cur, tp.At(now.Add(30*time.Second))) {
		t.Fatal("the next step has the same sequence")
	}
	if !slices.Equal(cur, tp.At(now.Add(5*time.Second))) {
		t.Fatal("the sequence changed within its step")
	}

	if !accepted(knockAll(newTracker([]*Door{d}, 0), cur, now)) {
		t.Error("the current sequence was refused")
	}
	if !accepted(knockAll(newTracker([]*Door{d}, 0), cur, now.Add(30*time.Second))) {
		t.Error("the previous step's sequence was refused")
	}
	// A recorded sequence a window later: refused.
	if outs := knockAll(newTracker([]*Door{d}, 0), cur, now.Add(60*time.Second)); accepted(outs) {
		t.Error("a sequence two steps old was accepted")
	}
	// Replayed within its window after it opened once: refused.
	tr := newTracker([]*Door{d}, 0)
	if !accepted(knockAll(tr, cur, now)) {
		t.Fatal("refused")
	}
	if accepted(knockAll(tr, cur, now.Add(time.Second))) {
		t.Error("a spent step's sequence opened twice")
	}
	// The next step still works.
	if !accepted(knockAll(tr, tp.At(now.Add(30*time.Second)), now.Add(31*time.Second))) {
		t.Error("the next step's sequence was refused")
	}
}

func TestTOTPNoRepeats(t *testing.T) {
	// A two-port range makes equal neighbours likely; none may remain.
	tp := TOTP{Secret: []byte("0123456789abcdef"), Low: 1000, High: 1001, Length: 8}
	for c := range uint64(200) {
		seq := tp.Sequence(c)
		for i := 1; i < len(seq); i++ {
			if seq[i] == seq[i-1] {
				t.Fatalf("step %d: %v repeats a knock", c, seq)
			}
		}
	}
}

func TestParseSequence(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // FormatSequence, or "" for an error
	}{
		{"7000,8000:udp,9000", "7000,8000:udp,9000"},
		{" 7000 , 8000/udp ,9000:tcp", "7000,8000:udp,9000"},
		{"7000", "7000"},
		{"", ""},
		{"7000,,8000", ""},
		{"0", ""},
		{"65536", ""},
		{"7000:sctp", ""},
		{"7000,7000", ""},
		{"7000,7000:udp", "7000,7000:udp"},
		{"-1", ""},
	} {
		seq, err := ParseSequence(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: parsed as %v", tc.in, seq)
			}
			continue
		}
		if err != nil || FormatSequence(seq) != tc.want {
			t.Errorf("%q: %v, %v; want %s", tc.in, FormatSequence(seq), err, tc.want)
		}
	}
}
