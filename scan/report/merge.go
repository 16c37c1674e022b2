package report

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/scan"
)

// Merge gathers the JSON Lines of runs of scans (shards, resumed runs, the
// same scan run again) into one report: one entry per address, port and
// protocol, the newest decision winning. A decision is dated by the start
// of its run (its "scan" line): the later start wins; between equal dates,
// and for results read without a "scan" line (which count as older than
// any dated one), the one read later wins: later in its file, or in a
// later input. Its zero value is not ready: use NewMerge.
type Merge struct {
	runs    []*Run
	entries map[entryKey]*merged
	seq     uint64
	// overlaps counts results that two shards of one scan both decided,
	// by scan and shard pair, with the first such result.
	overlaps map[overlapKey]*overlap
	// Empty names the inputs that held no line at all; Skipped counts the
	// lines of types this version does not know, by input.
	Empty   []string
	Skipped map[string]int
}

type entryKey struct {
	ip    netip.Addr
	port  uint16
	proto scan.Proto
}

type merged struct {
	Entry
	run *Run
	seq uint64
}

// NewMerge returns an empty Merge.
func NewMerge() *Merge {
	return &Merge{entries: map[entryKey]*merged{}, overlaps: map[overlapKey]*overlap{}, Skipped: map[string]int{}}
}

// Read adds one input's JSON Lines; its error is ReadJSONL's.
func (m *Merge) Read(r io.Reader, name string) error {
	lines := 0
	skipped, err := ReadJSONL(r, name,
		func(run *Run) { m.runs = append(m.runs, run); lines++ },
		func(run *Run, e Entry) { m.add(run, e) })
	if skipped > 0 {
		m.Skipped[name] += skipped
	}
	if err == nil && lines == 0 && skipped == 0 {
		m.Empty = append(m.Empty, name)
	}
	return err
}

func (m *Merge) add(run *Run, e Entry) {
	m.seq++
	k := entryKey{e.IP, e.Port, e.Proto}
	old := m.entries[k]
	if old == nil {
		m.entries[k] = &merged{Entry: e, run: run, seq: m.seq}
		return
	}
	if a, b := old.run.Info, run.Info; a != nil && b != nil && a.Shard != b.Shard && sameScan(a, b) {
		ok := overlapKey{scanOf(a), min(a.Shard, b.Shard), max(a.Shard, b.Shard)}
		if o := m.overlaps[ok]; o != nil {
			o.count++
		} else {
			m.overlaps[ok] = &overlap{count: 1, first: k}
		}
	}
	if newer(run, m.seq, old.run, old.seq) {
		*old = merged{Entry: e, run: run, seq: m.seq}
	}
}

// newer reports whether the decision of run a, read at sequence sa, is
// newer than that of run b, read at sb.
func newer(a *Run, sa uint64, b *Run, sb uint64) bool {
	var ta, tb time.Time
	if a.Info != nil {
		ta = a.Info.Start
	}
	if b.Info != nil {
		tb = b.Info.Start
	}
	if c := ta.Compare(tb); c != 0 {
		return c > 0
	}
	return sa > sb
}

// Runs returns the runs read, in input order.
func (m *Merge) Runs() []*Run { return m.runs }

// Len is the number of entries: distinct address, port and protocol.
func (m *Merge) Len() int { return len(m.entries) }

// Entries returns the merged entries in address order, then port, TCP
// before UDP on the same port.
func (m *Merge) Entries() []Entry {
	list := make([]Entry, 0, len(m.entries))
	for _, e := range m.entries {
		list = append(list, e.Entry)
	}
	slices.SortFunc(list, func(a, b Entry) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
	})
	return list
}

// scanID is what tells one scan from another: the probe order's seed, the
// number of shards, the number of targets and the ports. Two scans with
// all four equal (the same seed over two target lists of one size) are
// taken for one.
type scanID struct {
	seed    uint64
	shards  int
	targets int
	ports   string
}

func scanOf(i *ScanInfo) scanID {
	var ports []string
	for _, p := range i.Protocols {
		ports = append(ports, p.Proto.String()+" ports "+p.Ports)
	}
	return scanID{seed: i.Seed, shards: max(i.Shards, 1), targets: i.Targets, ports: strings.Join(ports, ", ")}
}

func sameScan(a, b *ScanInfo) bool { return scanOf(a) == scanOf(b) }

func (id scanID) String() string {
	s := fmt.Sprintf("seed %d (%s, %s", id.seed, plural(id.targets, "address", "addresses"), id.ports)
	if id.shards > 1 {
		s += fmt.Sprintf(", %d shards", id.shards)
	}
	return s + ")"
}

type overlapKey struct {
	scan   scanID
	shardA int
	shardB int
}

type overlap struct {
	count int
	first entryKey
}

// Problem is something the inputs lack or hold twice, found by Check.
type Problem struct {
	// Incomplete says the merged report lacks part of a scan: a shard
	// missing, or a run that did not finish.
	Incomplete bool
	Text       string
}

// Check says what is wrong with the runs read as parts of whole scans:
// inputs that hold runs of different scans; for each scan, shards that
// are missing, that were scanned twice from scratch (the newest decision
// of each port is kept), that did not finish (no run of theirs ended
// with success), or that overlap (two shards deciding one port: they are
// not of one scan); and runs without a "scan" line, which cannot be
// checked.
func (m *Merge) Check() []Problem {
	var problems []Problem
	add := func(incomplete bool, format string, a ...any) {
		problems = append(problems, Problem{Incomplete: incomplete, Text: fmt.Sprintf(format, a...)})
	}
	var scans []scanID
	byScan := map[scanID][]*Run{}
	var unheaded []string
	for _, r := range m.runs {
		if r.Info == nil {
			if !slices.Contains(unheaded, r.Name) {
				unheaded = append(unheaded, r.Name)
			}
			continue
		}
		id := scanOf(r.Info)
		if byScan[id] == nil {
			scans = append(scans, id)
		}
		byScan[id] = append(byScan[id], r)
	}
	if len(unheaded) > 0 {
		add(false, "%s: results without a \"scan\" line (an older portkit's output): which scan and shard they are of cannot be checked", strings.Join(unheaded, ", "))
	}
	if len(scans) > 1 {
		var parts []string
		for _, id := range scans {
			parts = append(parts, fmt.Sprintf("%s in %s", id, strings.Join(runNames(byScan[id]), ", ")))
		}
		add(false, "the inputs hold %d different scans, merged with the newest result of each port kept: %s", len(scans), strings.Join(parts, "; "))
	}
	for _, id := range scans {
		runs := byScan[id]
		for shard := 1; shard <= id.shards; shard++ {
			var of []*Run
			for _, r := range runs {
				if max(r.Info.Shard, 1) == shard {
					of = append(of, r)
				}
			}
			name := "the scan of " + id.String()
			if id.shards > 1 {
				name = fmt.Sprintf("shard %d/%d of %s", shard, id.shards, id)
			}
			if len(of) == 0 {
				add(true, "%s is missing", name)
				continue
			}
			var fresh []string
			for _, r := range of {
				if !r.Info.Resumed {
					fresh = append(fresh, r.Where())
				}
			}
			if len(fresh) > 1 {
				add(false, "%s was scanned %d times from the start (%s): the newest result of each port is kept", name, len(fresh), strings.Join(fresh, ", "))
			}
			if !slices.ContainsFunc(of, func(r *Run) bool { return r.Summary != nil && r.Summary.Exit == Success }) {
				last := of[len(of)-1]
				add(true, "%s did not finish: %s %s", name, last.Where(), unfinished(last))
			}
		}
	}
	keys := make([]overlapKey, 0, len(m.overlaps))
	for k := range m.overlaps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b overlapKey) int {
		return cmp.Or(slices.Index(scans, a.scan)-slices.Index(scans, b.scan), a.shardA-b.shardA, a.shardB-b.shardB)
	})
	for _, k := range keys {
		o := m.overlaps[k]
		add(false, "shards %d/%d and %d/%d of %s both hold %s (%s): shards of one scan are disjoint, so these are not",
			k.shardA, k.scan.shards, k.shardB, k.scan.shards, k.scan, plural(o.count, "result", "results"), o.first)
	}
	return problems
}

func (k entryKey) String() string {
	return netip.AddrPortFrom(k.ip, k.port).String() + "/" + k.proto.String()
}

// unfinished says how a run that did not succeed ended.
func unfinished(r *Run) string {
	switch {
	case r.Summary == nil:
		return "has no \"summary\" line: the run was cut short (killed?), or its output was"
	case r.Summary.Exit == Interrupted:
		return "was interrupted; continue it with portkit scan --resume"
	case r.Summary.Error != "":
		return "stopped on an error: " + r.Summary.Error
	}
	return "ended with " + strconv.Quote(string(r.Summary.Exit))
}

func runNames(runs []*Run) []string {
	var names []string
	for _, r := range runs {
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names
}

// Info is what the merged report's header says: the earliest run's start,
// the protocols and targets where every run agrees on them, and args,
// the command that made the report.
func (m *Merge) Info(args []string, version string) ScanInfo {
	info := ScanInfo{Args: args, Version: version}
	first, agree, oneSeed := true, true, true
	for _, r := range m.runs {
		if r.Info == nil {
			continue
		}
		if info.Start.IsZero() || r.Info.Start.Before(info.Start) {
			info.Start = r.Info.Start
		}
		if first {
			info.Protocols, info.Targets, info.Seed, first = r.Info.Protocols, r.Info.Targets, r.Info.Seed, false
			continue
		}
		agree = agree && slices.Equal(info.Protocols, r.Info.Protocols) && info.Targets == r.Info.Targets
		oneSeed = oneSeed && info.Seed == r.Info.Seed
	}
	if !agree {
		info.Protocols, info.Targets = nil, 0
	}
	if !first && agree && oneSeed {
		// The report is the whole of that one scan: its only shard.
		info.Shard, info.Shards = 1, 1
	} else {
		info.Seed = 0
	}
	return info
}

// Summary is what the merged report's footer says: counts of the merged
// entries, the hosts up among them (an open or closed port), the span from
// the earliest start to the latest end, and Failed with what is missing
// when problems say the report is incomplete.
func (m *Merge) Summary(info ScanInfo, problems []Problem) Summary {
	s := Summary{Exit: Success}
	up := map[netip.Addr]bool{}
	hosts := map[netip.Addr]bool{}
	for _, e := range m.entries {
		hosts[e.IP] = true
		switch e.State {
		case scan.Open:
			s.Open++
			up[e.IP] = true
		case scan.Closed:
			s.Closed++
			up[e.IP] = true
		case scan.Filtered:
			s.Filtered++
		case scan.OpenFiltered:
			s.OpenFiltered++
		}
	}
	s.HostsUp = len(up)
	s.HostsTotal = max(info.Targets, len(hosts))
	s.HostsDown = s.HostsTotal - s.HostsUp
	var elapsed time.Duration
	for _, r := range m.runs {
		if r.Summary == nil {
			continue
		}
		elapsed += r.Summary.Elapsed
		if r.Summary.End.After(s.End) {
			s.End = r.Summary.End
		}
	}
	s.Elapsed = elapsed
	if !info.Start.IsZero() && s.End.After(info.Start) {
		s.Elapsed = s.End.Sub(info.Start)
	}
	var missing []string
	for _, p := range problems {
		if p.Incomplete {
			missing = append(missing, p.Text)
		}
	}
	if len(missing) > 0 {
		s.Exit, s.Error = Failed, "incomplete: "+strings.Join(missing, "; ")
	}
	return s
}

// Timing is the runs' own account of their time: the sum of their elapsed
// times and of the probes they decided, for a rate per run.
func (m *Merge) Timing() (elapsed time.Duration, probes int) {
	for _, r := range m.runs {
		if s := r.Summary; s != nil {
			elapsed += s.Elapsed
			probes += s.Open + s.Closed + s.Filtered + s.OpenFiltered
		}
	}
	return elapsed, probes
}
