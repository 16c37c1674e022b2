package knock

import (
	"container/list"
	"net/netip"
	"slices"
	"time"

	"github.com/portkit/portkit/knock/spa"
)

// DefaultSeqTimeout is how long a sequence may take when a door does not
// say (knockd's default is 25 seconds).
const DefaultSeqTimeout = 25 * time.Second

// DefaultMaxSources bounds the sources whose knocks are followed at once.
const DefaultMaxSources = 10000

// Door is one knock rule: a sequence, which sources may knock it, and what
// a completed knock opens, for how long. Exactly one of Sequence, OneTime
// and TOTP gives the sequence.
type Door struct {
	Name      string
	SourceAny bool
	Source    []netip.Prefix

	Sequence []Knock      // a fixed sequence, as knockd's Sequence
	OneTime  *OneTimeFile // knockd's One_Time_Sequences: each line used once
	TOTP     *TOTP        // derived from a secret and the time: current and previous step

	SeqTimeout    time.Duration // DefaultSeqTimeout when 0
	OpenPorts     []spa.ProtoPort
	AccessTimeout time.Duration
}

func (d *Door) matches(addr netip.Addr) bool {
	if d.SourceAny {
		return true
	}
	addr = addr.Unmap()
	for _, p := range d.Source {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// candidate is a sequence a door takes now; step is the TOTP counter.
type candidate struct {
	seq  []Knock
	step uint64
}

// candidates appends to out the sequences the door takes at now; out is
// the caller's, on its stack, so that a knock costs no allocation.
func (d *Door) candidates(out []candidate, now time.Time, usedStep uint64, stepUsed bool) []candidate {
	switch {
	case d.TOTP != nil:
		c := d.TOTP.Counter(now)
		for _, s := range []uint64{c, c - 1} {
			// A step whose sequence was accepted once is spent, as RFC
			// 6238 asks, so a sequence seen on the wire cannot be replayed
			// within its own window either.
			if s > c || (stepUsed && s <= usedStep) {
				continue
			}
			out = append(out, candidate{seq: d.TOTP.Sequence(s), step: s})
		}
		return out
	case d.OneTime != nil:
		if seq := d.OneTime.Current(); seq != nil {
			return append(out, candidate{seq: seq})
		}
		return out
	}
	return append(out, candidate{seq: d.Sequence})
}

// knockPorts are the knocks that can be part of the door's sequences:
// what the packet filter must let through.
func (d *Door) knockPorts() (ports []Knock, ranges []portRange) {
	switch {
	case d.TOTP != nil:
		t := d.TOTP.WithDefaults()
		return nil, []portRange{{t.Proto, t.Low, t.High}}
	case d.OneTime != nil:
		return d.OneTime.AllKnocks(), nil
	}
	return d.Sequence, nil
}

type portRange struct {
	proto     Proto
	low, high uint16
}

// Outcome is what a knock did to one door for one source.
type Outcome struct {
	Door     *Door
	Src      netip.Addr
	Accepted bool   // the sequence is complete: open the door's ports
	Reason   Reason // why a sequence was refused: ReasonWrongSequence, ReasonSeqTimeout
	Knocks   []Knock
}

// tracker follows each source's progress through each door. It holds at
// most max entries and evicts the least recently knocked first, so a flood
// of sources costs a bounded amount of memory. It is not safe for
// concurrent use: the server's packet loop owns it.
type tracker struct {
	doors   []*Door
	max     int
	entries map[trackKey]*list.Element
	lru     *list.List // of *progress, least recently knocked first
	// usedStep is, per TOTP door, the last step whose sequence opened.
	usedStep map[*Door]uint64
}

type trackKey struct {
	src  netip.Addr
	door int
}

type progress struct {
	key    trackKey
	knocks []Knock
	first  time.Time
}

func newTracker(doors []*Door, max int) *tracker {
	if max <= 0 {
		max = DefaultMaxSources
	}
	return &tracker{doors: doors, max: max, entries: map[trackKey]*list.Element{}, lru: list.New(), usedStep: map[*Door]uint64{}}
}

// Len is how many (source, door) progresses are held.
func (t *tracker) Len() int { return len(t.entries) }

// knock feeds one knock from src at now to every door src may knock, and
// returns what happened to each door whose state changed visibly: a
// completed sequence, or one broken or timed out.
func (t *tracker) knock(src netip.Addr, k Knock, now time.Time, out []Outcome) []Outcome {
	src = src.Unmap()
	for i, d := range t.doors {
		if !d.matches(src) {
			continue
		}
		key := trackKey{src, i}
		var p *progress
		if e := t.entries[key]; e != nil {
			p = e.Value.(*progress)
		}
		timeout := d.SeqTimeout
		if timeout <= 0 {
			timeout = DefaultSeqTimeout
		}
		if p != nil && now.Sub(p.first) > timeout {
			out = append(out, Outcome{Door: d, Src: src, Reason: ReasonSeqTimeout, Knocks: p.knocks})
			t.remove(key)
			p = nil
		}
		if p != nil && p.knocks[len(p.knocks)-1] == k {
			continue // a retransmission, or the same knock sent twice: never a break
		}
		used, stepUsed := t.usedStep[d]
		var cbuf [2]candidate
		cands := d.candidates(cbuf[:0], now, used, stepUsed)
		var h []Knock
		switch {
		case p != nil:
			h = append(slices.Clip(p.knocks), k)
		case !beginsAny(cands, k):
			// No sequence begins with k and the source is followed in
			// none: nothing to follow, nothing to break, and nothing
			// allocated for a junk knock.
			continue
		default:
			h = []Knock{k}
		}
		if c, complete, ok := match(cands, h); ok {
			if complete {
				t.remove(key)
				if d.TOTP != nil {
					t.usedStep[d] = c.step
				}
				out = append(out, Outcome{Door: d, Src: src, Accepted: true, Knocks: h})
				continue
			}
			if p == nil {
				p = t.add(key, now)
			} else {
				t.lru.MoveToBack(t.entries[key])
			}
			p.knocks = h
			continue
		}
		if p != nil {
			out = append(out, Outcome{Door: d, Src: src, Reason: ReasonWrongSequence, Knocks: h})
			t.remove(key)
		}
		// The wrong knock may itself begin the sequence again.
		if _, complete, ok := match(cands, []Knock{k}); ok && !complete {
			t.add(key, now).knocks = []Knock{k}
		}
	}
	return out
}

// beginsAny tells whether a candidate begins with k.
func beginsAny(cands []candidate, k Knock) bool {
	for _, c := range cands {
		if len(c.seq) > 0 && c.seq[0] == k {
			return true
		}
	}
	return false
}

// match finds a candidate h is a prefix of, preferring one h completes.
func match(cands []candidate, h []Knock) (c candidate, complete, ok bool) {
	for _, c := range cands {
		if len(h) <= len(c.seq) && slices.Equal(c.seq[:len(h)], h) {
			if len(h) == len(c.seq) {
				return c, true, true
			}
			ok = true
		}
	}
	return candidate{}, false, ok
}

func (t *tracker) add(key trackKey, now time.Time) *progress {
	for len(t.entries) >= t.max {
		oldest := t.lru.Front()
		t.remove(oldest.Value.(*progress).key)
	}
	p := &progress{key: key, first: now}
	t.entries[key] = t.lru.PushBack(p)
	return p
}

func (t *tracker) remove(key trackKey) {
	if e := t.entries[key]; e != nil {
		t.lru.Remove(e)
		delete(t.entries, key)
	}
}
