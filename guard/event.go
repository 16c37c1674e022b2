package guard

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Answer is how this host answered a connection attempt.
type Answer string

// The answers.
const (
	// AnswerRST: a TCP reset, the port is closed (or a firewall rejects
	// with a reset).
	AnswerRST Answer = "rst"
	// AnswerICMP: an ICMP destination unreachable.
	AnswerICMP Answer = "icmp"
	// AnswerDropped: a TCP SYN this host neither refused nor accepted
	// within Config.AnswerWait: something (a firewall) dropped it.
	AnswerDropped Answer = "dropped"
	// AnswerNone: no answer seen, where silence is an open port's answer
	// too (UDP, and FIN, NULL and Xmas probes, RFC 793).
	AnswerNone Answer = "none"
	// AnswerAccepted: the handshake completed (only with LogAll).
	AnswerAccepted Answer = "accepted"
	// AnswerHalfOpen: the port answered SYN-ACK and the sender reset
	// the connection instead of completing it (only with LogAll).
	AnswerHalfOpen Answer = "half-open"
)

// Refused reports whether a is a refusal: the attempts guard logs.
func (a Answer) Refused() bool { return a == AnswerRST || a == AnswerICMP || a == AnswerDropped }

// Attempt is one connection attempt, logged once its answer is known.
type Attempt struct {
	Time       time.Time // when the attempt arrived
	Flow                 // as the sender sent it
	Flags      uint8     // TCP flags; for ICMP its type
	TTL        uint8
	Answer     Answer
	Suppressed int // attempts of this source not logged before this one (its rate limit)
	// SuppressedAll is attempts of any source not logged before this one
	// for the limit on all sources together.
	SuppressedAll int
}

// Phase is where a scan alert is in its life.
type Phase string

// The phases.
const (
	PhaseStart  Phase = "start"  // first detected
	PhaseUpdate Phase = "update" // goes on (at most every Config.UpdateEvery)
	PhaseEnd    Phase = "end"    // quiet for Config.EndAfter: the summary
)

// Alert is one scan: the same ID from its start to its end.
type Alert struct {
	ID    uint64
	Phase Phase
	Time  time.Time // of this report
	// Kind is "ports" (one source, many ports), "sweep" (one source,
	// one port on many of this host's addresses) or "distributed"
	// (many sources, each a slice of the ports).
	Kind string
	// Trigger is the rule that detected it: "short" (scanlogd's
	// weighted ports within short gaps), "long" (distinct ports within
	// the long window), "sweep", "distributed".
	Trigger  string
	Type     string // SYN, connect, FIN, NULL, Xmas, ACK/Window, Maimon, UDP; several joined by "+"
	Tool     string // a guess from the packets, "" when there is no honest evidence
	Sources  []netip.Addr
	Targets  []netip.Addr
	TCPPorts []uint16 // sorted
	UDPPorts []uint16 // sorted
	Probes   int      // probe packets counted
	Start    time.Time
	Last     time.Time // the last probe
	TTL      uint8     // of the first probe
	// Blocked are the sources whose block the Blocker had done when
	// this report was made (blocks run beside the detection).
	Blocked []netip.Addr
}

// Duration is from the first probe to the last.
func (a *Alert) Duration() time.Duration { return a.Last.Sub(a.Start) }

// Rate is probes per second over the scan's duration (zero for an
// instant).
func (a *Alert) Rate() float64 {
	if d := a.Duration().Seconds(); d > 0 {
		return float64(a.Probes) / d
	}
	return 0
}

// Event is an Attempt or an Alert.
type Event struct {
	Attempt *Attempt
	Alert   *Alert
}

// PortRanges writes sorted ports as "1-100,443".
func PortRanges(ports []uint16) string {
	var b strings.Builder
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(ports[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(ports[j])))
		}
		i = j + 1
	}
	return b.String()
}

const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

type attemptJSON struct {
	Time          string `json:"time"`
	Event         string `json:"event"`
	Src           string `json:"src"`
	SrcPort       uint16 `json:"src_port"`
	Dst           string `json:"dst"`
	DstPort       uint16 `json:"dst_port"`
	Proto         string `json:"proto"`
	Flags         string `json:"flags,omitempty"`
	ICMPType      *uint8 `json:"icmp_type,omitempty"`
	TTL           uint8  `json:"ttl"`
	Answer        Answer `json:"answer"`
	Suppressed    int    `json:"suppressed,omitempty"`
	SuppressedAll int    `json:"suppressed_all,omitempty"`
}

type alertJSON struct {
	Time      string       `json:"time"`
	Event     string       `json:"event"`
	ID        uint64       `json:"id"`
	Phase     Phase        `json:"phase"`
	Kind      string       `json:"kind"`
	Trigger   string       `json:"trigger"`
	Type      string       `json:"type"`
	Tool      string       `json:"tool,omitempty"`
	Sources   []netip.Addr `json:"sources"`
	Targets   []netip.Addr `json:"targets"`
	TCPPorts  string       `json:"tcp_ports,omitempty"`
	UDPPorts  string       `json:"udp_ports,omitempty"`
	PortCount int          `json:"port_count"`
	Probes    int          `json:"probes"`
	Start     string       `json:"start"`
	Duration  float64      `json:"duration_s"`
	Rate      float64      `json:"rate_pps"`
	TTL       uint8        `json:"ttl"`
	Blocked   []netip.Addr `json:"blocked,omitempty"`
}

// MarshalJSON writes the event as one JSON object; "event" says which:
// "attempt" or "scan".
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }

// AppendJSON appends MarshalJSON's object to b. An attempt, written for
// every refused connection, is written without reflection and without
// allocating.
func (e Event) AppendJSON(b []byte) ([]byte, error) {
	switch {
	case e.Attempt != nil:
		return appendAttempt(b, e.Attempt), nil
	case e.Alert != nil:
		a := e.Alert
		j, err := json.Marshal(alertJSON{Time: a.Time.UTC().Format(timeFormat), Event: "scan", ID: a.ID, Phase: a.Phase, Kind: a.Kind,
			Trigger: a.Trigger, Type: a.Type, Tool: a.Tool, Sources: a.Sources, Targets: a.Targets,
			TCPPorts: PortRanges(a.TCPPorts), UDPPorts: PortRanges(a.UDPPorts), PortCount: len(a.TCPPorts) + len(a.UDPPorts),
			Probes: a.Probes, Start: a.Start.UTC().Format(timeFormat), Duration: a.Duration().Seconds(),
			Rate: float64(int64(a.Rate()*10)) / 10, TTL: a.TTL, Blocked: a.Blocked})
		return append(b, j...), err
	}
	return b, fmt.Errorf("guard: empty event")
}

// appendAttempt writes what json.Marshal writes of the attempt's
// attemptJSON (TestAttemptJSON holds them to it). Every string in it is
// of characters JSON takes as they are: digits, addresses, names.
func appendAttempt(b []byte, a *Attempt) []byte {
	if a.Src.Zone() != "" || a.Dst.Zone() != "" {
		// Not from a packet: the zone is any text.
		return appendAttemptReflect(b, a)
	}
	sport, dport := a.SrcPort, a.DstPort
	if a.Proto == ICMP {
		sport, dport = 0, 0
	}
	b = append(b, `{"time":"`...)
	b = a.Time.UTC().AppendFormat(b, timeFormat)
	b = append(b, `","event":"attempt","src":"`...)
	b = a.Src.AppendTo(b)
	b = append(b, `","src_port":`...)
	b = strconv.AppendUint(b, uint64(sport), 10)
	b = append(b, `,"dst":"`...)
	b = a.Dst.AppendTo(b)
	b = append(b, `","dst_port":`...)
	b = strconv.AppendUint(b, uint64(dport), 10)
	b = append(b, `,"proto":"`...)
	b = append(b, a.Proto.String()...)
	b = append(b, '"')
	switch a.Proto {
	case TCP:
		b = append(b, `,"flags":"`...)
		b = appendFlags(b, a.Flags)
		b = append(b, '"')
	case ICMP:
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(a.Flags), 10)
	}
	b = append(b, `,"ttl":`...)
	b = strconv.AppendUint(b, uint64(a.TTL), 10)
	b = append(b, `,"answer":"`...)
	b = append(b, a.Answer...)
	b = append(b, '"')
	if a.Suppressed != 0 {
		b = append(b, `,"suppressed":`...)
		b = strconv.AppendInt(b, int64(a.Suppressed), 10)
	}
	if a.SuppressedAll != 0 {
		b = append(b, `,"suppressed_all":`...)
		b = strconv.AppendInt(b, int64(a.SuppressedAll), 10)
	}
	return append(b, '}')
}

// appendAttemptReflect is appendAttempt through encoding/json.
func appendAttemptReflect(b []byte, a *Attempt) []byte {
	j := attemptJSON{Time: a.Time.UTC().Format(timeFormat), Event: "attempt", Src: a.Src.String(), SrcPort: a.SrcPort,
		Dst: a.Dst.String(), DstPort: a.DstPort, Proto: a.Proto.String(), TTL: a.TTL, Answer: a.Answer, Suppressed: a.Suppressed, SuppressedAll: a.SuppressedAll}
	switch a.Proto {
	case TCP:
		j.Flags = FlagString(a.Flags)
	case ICMP:
		t := a.Flags
		j.ICMPType = &t
		j.SrcPort, j.DstPort = 0, 0
	}
	out, _ := json.Marshal(j) // of strings and numbers only: no error
	return append(b, out...)
}

// SyslogLine is the event in scanlogd's one-line style:
//
//	198.18.0.1 to 198.18.0.2 ports 20-119 (100), SYN, TTL 64 @14:50:01 [scan 3 start]
func (e Event) SyslogLine() string {
	if a := e.Attempt; a != nil {
		s := fmt.Sprintf("%s to %s %s, %s", netip.AddrPortFrom(a.Src, a.SrcPort), netip.AddrPortFrom(a.Dst, a.DstPort), a.Proto, a.Answer)
		if a.Proto == TCP {
			s += ", " + FlagString(a.Flags)
		}
		s += fmt.Sprintf(", TTL %d @%s", a.TTL, a.Time.Format("15:04:05"))
		if a.Suppressed > 0 {
			s += fmt.Sprintf(" (%d more not logged)", a.Suppressed)
		}
		if a.SuppressedAll > 0 {
			s += fmt.Sprintf(" (%d of all sources not logged)", a.SuppressedAll)
		}
		return s
	}
	a := e.Alert
	srcs := make([]string, len(a.Sources))
	for i, s := range a.Sources {
		srcs[i] = s.String()
	}
	tgts := make([]string, len(a.Targets))
	for i, t := range a.Targets {
		tgts[i] = t.String()
	}
	var ports []string
	if len(a.TCPPorts) > 0 {
		ports = append(ports, "tcp "+PortRanges(a.TCPPorts))
	}
	if len(a.UDPPorts) > 0 {
		ports = append(ports, "udp "+PortRanges(a.UDPPorts))
	}
	s := fmt.Sprintf("%s to %s ports %s (%d), %s", strings.Join(srcs, ","), strings.Join(tgts, ","),
		strings.Join(ports, " "), len(a.TCPPorts)+len(a.UDPPorts), a.Type)
	if a.Tool != "" {
		s += ", " + a.Tool
	}
	s += fmt.Sprintf(", TTL %d @%s [scan %d %s %s", a.TTL, a.Start.Format("15:04:05"), a.ID, a.Phase, a.Kind)
	if a.Phase == PhaseEnd {
		s += fmt.Sprintf(", %d probes in %s", a.Probes, a.Duration().Round(time.Millisecond))
	}
	if len(a.Blocked) > 0 {
		s += fmt.Sprintf(", blocked %d", len(a.Blocked))
	}
	return s + "]"
}

func sortedAddrs(m map[netip.Addr]struct{}) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
