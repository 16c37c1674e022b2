package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// key is one probed (address, TCP port).
type key struct {
	addr netip.Addr
	port uint16
}

func (k key) String() string { return netip.AddrPortFrom(k.addr, k.port).String() }

// result is what one run of a scanner reported about TCP ports.
type result struct {
	states map[key]string // "open", "closed", "filtered", ... per port
	// repeats counts ports reported more than once, and conflicts those
	// reported with two states: a scanner should report each probe once
	// (masscan may repeat an open port, which costs it nothing here).
	repeats, conflicts int
	// unlisted counts, by state, ports a tool reported only as a number:
	// nmap's <extraports> when it gives no list of them.
	unlisted map[string]int
}

func newResult() *result {
	return &result{states: map[key]string{}, unlisted: map[string]int{}}
}

// set records a state; a port reported twice keeps its first state unless
// a later report says open (masscan may repeat a port; open is what counts).
func (r *result) set(k key, state string) {
	old, seen := r.states[k]
	if seen {
		r.repeats++
		if old != state {
			r.conflicts++
		}
	}
	if seen && old == "open" {
		return
	}
	r.states[k] = state
}

// parser reads one tool's output.
type parser func(io.Reader) (*result, error)

// parsePortkitJSONL reads `portkit scan -o jsonl`: one object a line with
// ip, port, protocol and state, and a run's "scan" and "summary" lines,
// which have a type and are skipped. It keeps the TCP ports.
var parsePortkitJSONL = portkitParser("tcp")

// portkitParser reads `portkit scan -o jsonl` for the ports of proto.
func portkitParser(proto string) parser {
	return func(rd io.Reader) (*result, error) { return parsePortkitProto(rd, proto) }
}

func parsePortkitProto(rd io.Reader, proto string) (*result, error) {
	r := newResult()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v struct {
			Type     string     `json:"type"`
			IP       netip.Addr `json:"ip"`
			Port     uint16     `json:"port"`
			Protocol string     `json:"protocol"`
			State    string     `json:"state"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("portkit jsonl line %d: %v", n, err)
		}
		if v.Type != "" {
			continue
		}
		if !v.IP.IsValid() || v.State == "" {
			return nil, fmt.Errorf("portkit jsonl line %d: no ip or no state: %s", n, line)
		}
		if v.Protocol == proto {
			r.set(key{v.IP.Unmap(), v.Port}, v.State)
		}
	}
	return r, sc.Err()
}

// nmapRun is the part of nmap's XML output (-oX) that is scored.
type nmapRun struct {
	XMLName xml.Name `xml:"nmaprun"`
	Hosts   []struct {
		Addresses []struct {
			Addr string `xml:"addr,attr"`
			Type string `xml:"addrtype,attr"`
		} `xml:"address"`
		Extra []struct {
			State   string `xml:"state,attr"`
			Count   int    `xml:"count,attr"`
			Reasons []struct {
				Count int    `xml:"count,attr"`
				Proto string `xml:"proto,attr"`
				Ports string `xml:"ports,attr"`
			} `xml:"extrareasons"`
		} `xml:"ports>extraports"`
		Ports []struct {
			Protocol string `xml:"protocol,attr"`
			ID       uint16 `xml:"portid,attr"`
			State    struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
		} `xml:"ports>port"`
	} `xml:"host"`
	Finished struct {
		Exit string `xml:"exit,attr"`
	} `xml:"runstats>finished"`
}

// parseNmapXML reads nmap's -oX output for its TCP ports. Ports nmap folds
// into <extraports> are expanded from the ports lists of its
// <extrareasons> (nmap 7.80 and later); without such a list they are only
// counted.
var parseNmapXML = nmapParser("tcp")

// nmapParser reads nmap's -oX output for the ports of proto.
func nmapParser(proto string) parser {
	return func(rd io.Reader) (*result, error) { return parseNmapProto(rd, proto) }
}

func parseNmapProto(rd io.Reader, proto string) (*result, error) {
	var run nmapRun
	if err := xml.NewDecoder(rd).Decode(&run); err != nil {
		return nil, fmt.Errorf("nmap xml: %v", err)
	}
	if run.Finished.Exit != "success" {
		return nil, fmt.Errorf("nmap xml: the run did not finish (exit=%q)", run.Finished.Exit)
	}
	r := newResult()
	for _, h := range run.Hosts {
		var addr netip.Addr
		for _, a := range h.Addresses {
			if a.Type == "ipv4" || a.Type == "ipv6" {
				addr, _ = netip.ParseAddr(a.Addr)
			}
		}
		if !addr.IsValid() {
			return nil, fmt.Errorf("nmap xml: a host without an IP address")
		}
		for _, p := range h.Ports {
			if p.Protocol == proto {
				r.set(key{addr, p.ID}, p.State.State)
			}
		}
		for _, x := range h.Extra {
			listed := 0
			for _, why := range x.Reasons {
				if why.Ports == "" || (why.Proto != "" && why.Proto != proto) {
					continue
				}
				ports, err := parsePortRanges(why.Ports)
				if err != nil {
					return nil, fmt.Errorf("nmap xml: extrareasons of %v: %v", addr, err)
				}
				for _, p := range ports {
					r.set(key{addr, p}, x.State)
				}
				listed += len(ports)
			}
			if x.Count > listed {
				r.unlisted[x.State] += x.Count - listed
			}
		}
	}
	return r, nil
}

// parsePortRanges reads "1-21,23,25-79".
func parsePortRanges(s string) ([]uint16, error) {
	var ports []uint16
	for f := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("bad port range %q", f)
		}
		for p := a; p <= b; p++ {
			ports = append(ports, uint16(p))
		}
	}
	return ports, nil
}

// parseMasscanList reads masscan's -oL output: "open tcp 80 198.18.0.2 TIME"
// lines and # comments.
func parseMasscanList(rd io.Reader) (*result, error) {
	r := newResult()
	sc := bufio.NewScanner(rd)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("masscan list line %d: %q", n, sc.Text())
		}
		port, err := strconv.ParseUint(f[2], 10, 16)
		addr, aerr := netip.ParseAddr(f[3])
		if err != nil || aerr != nil {
			return nil, fmt.Errorf("masscan list line %d: %q", n, sc.Text())
		}
		if f[1] == "tcp" {
			r.set(key{addr, uint16(port)}, f[0])
		}
	}
	return r, sc.Err()
}
