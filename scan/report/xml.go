package report

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// xmlWriter writes nmap's XML format (the -oX of nmap.dtd, output version
// 1.05), so that tools that read nmap's reports read portkit's. The header
// is written at Begin; hosts are grouped and written at End (see the
// package comment).
type xmlWriter struct {
	w   io.Writer
	enc *xml.Encoder
	grouped
}

// scanner is nmaprun's scanner attribute. nmap.dtd enumerates it as "nmap"
// alone, and the report is meant to validate against that DTD unchanged and
// load into the tools that read nmap's XML; portkit names itself in the
// args attribute (the command line, "portkit scan …") and in the summary.
const scanner = "nmap"

func newXML(w io.Writer, opts Options) *xmlWriter {
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	return &xmlWriter{w: w, enc: enc, grouped: newGrouped(opts)}
}

type xmlScanInfo struct {
	XMLName     xml.Name `xml:"scaninfo"`
	Type        string   `xml:"type,attr"`
	Protocol    string   `xml:"protocol,attr"`
	NumServices int      `xml:"numservices,attr"`
	Services    string   `xml:"services,attr"`
}

type xmlLevel struct {
	Level int `xml:"level,attr"`
}

type xmlHost struct {
	XMLName   xml.Name   `xml:"host"`
	Status    xmlStatus  `xml:"status"`
	Address   xmlAddress `xml:"address"`
	Hostnames struct{}   `xml:"hostnames"`
	Ports     xmlPorts   `xml:"ports"`
}

// xmlPorts is a host's ports: the states collapsed into a count first,
// then a port element for each of the others, as nmap.dtd orders them.
type xmlPorts struct {
	Extra []xmlExtraPorts `xml:"extraports"`
	Ports []xmlPort       `xml:"port"`
}

// xmlExtraPorts counts a host's ports in one state that are not listed
// one by one, with a count per reason and protocol.
type xmlExtraPorts struct {
	State   string            `xml:"state,attr"`
	Count   int               `xml:"count,attr"`
	Reasons []xmlExtraReasons `xml:"extrareasons"`
}

type xmlExtraReasons struct {
	Reason string `xml:"reason,attr"`
	Count  int    `xml:"count,attr"`
	Proto  string `xml:"proto,attr"`
	Ports  string `xml:"ports,attr"`
}

type xmlStatus struct {
	State  string `xml:"state,attr"`
	Reason string `xml:"reason,attr"`
	TTL    uint8  `xml:"reason_ttl,attr"`
}

type xmlAddress struct {
	Addr string `xml:"addr,attr"`
	Type string `xml:"addrtype,attr"`
}

type xmlPort struct {
	Protocol string      `xml:"protocol,attr"`
	PortID   uint16      `xml:"portid,attr"`
	State    xmlState    `xml:"state"`
	Service  *xmlService `xml:"service"`
}

type xmlState struct {
	State  string `xml:"state,attr"`
	Reason string `xml:"reason,attr"`
	TTL    uint8  `xml:"reason_ttl,attr"`
}

// xmlService is a name from the registry: method "table" at confidence 3
// is what nmap writes for a name it looked up rather than probed; or
// what service detection found, method "probed".
type xmlService struct {
	Name      string   `xml:"name,attr"`
	Method    string   `xml:"method,attr"`
	Conf      int      `xml:"conf,attr"`
	Version   string   `xml:"version,attr,omitempty"`
	Product   string   `xml:"product,attr,omitempty"`
	ExtraInfo string   `xml:"extrainfo,attr,omitempty"`
	Tunnel    string   `xml:"tunnel,attr,omitempty"`
	CPE       []string `xml:"cpe"`
}

// probedService is the service element of an identified port. nmap.dtd
// has no place for a certificate but its scripts: the certificate goes
// in the JSON formats; here tunnel="ssl" says TLS was spoken.
func probedService(s *service.Result) *xmlService {
	v := &xmlService{Name: s.Service, Method: "probed", Conf: s.Confidence, Product: xmlText(s.Product),
		Version: xmlText(s.Version), ExtraInfo: xmlText(s.Info), CPE: s.CPE}
	if s.Banner != "" {
		v.ExtraInfo = "banner " + s.Banner
	}
	if s.TLS != nil && s.TLS.StartTLS == "" {
		v.Tunnel = "ssl"
	}
	v.Conf = min(max(v.Conf, 0), 10)
	return v
}

// xmlText keeps only the characters XML 1.0 allows (§2.2): a peer's text
// may hold any byte.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0x9 || r == 0xa || r == 0xd || r >= 0x20 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff {
			return r
		}
		return -1
	}, strings.ToValidUTF8(s, ""))
}

type xmlRunStats struct {
	XMLName  xml.Name `xml:"runstats"`
	Finished struct {
		Time     int64  `xml:"time,attr"`
		TimeStr  string `xml:"timestr,attr"`
		Elapsed  string `xml:"elapsed,attr"`
		Summary  string `xml:"summary,attr"`
		Exit     string `xml:"exit,attr"`
		ErrorMsg string `xml:"errormsg,attr,omitempty"`
	} `xml:"finished"`
	Hosts struct {
		Up    int `xml:"up,attr"`
		Down  int `xml:"down,attr"`
		Total int `xml:"total,attr"`
	} `xml:"hosts"`
}

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

// Begin writes the document's header. The encoder's write errors are
// sticky, so its last call reports any.
func (x *xmlWriter) Begin(info ScanInfo) error {
	if _, err := io.WriteString(x.w, xml.Header+"<!DOCTYPE nmaprun>\n"); err != nil {
		return err
	}
	x.enc.EncodeToken(xml.StartElement{Name: xml.Name{Local: "nmaprun"}, Attr: []xml.Attr{
		attr("scanner", scanner),
		attr("args", strings.Join(info.Args, " ")),
		attr("start", strconv.FormatInt(info.Start.Unix(), 10)),
		attr("startstr", ctime(info.Start)),
		attr("version", info.Version),
		attr("xmloutputversion", "1.05"),
	}})
	for _, p := range info.Protocols {
		x.enc.Encode(xmlScanInfo{Type: p.Type, Protocol: p.Proto.String(), NumServices: p.NumPorts, Services: p.Ports})
	}
	x.enc.EncodeElement(xmlLevel{}, xml.StartElement{Name: xml.Name{Local: "verbose"}})
	return x.enc.EncodeElement(xmlLevel{}, xml.StartElement{Name: xml.Name{Local: "debugging"}})
}

func (x *xmlWriter) End(s Summary) error {
	for _, h := range x.hosts.sorted() {
		v := xmlHost{
			Status:  xmlStatus{State: "unknown", Reason: h.reason, TTL: h.ttl},
			Address: xmlAddress{Addr: h.addr.String(), Type: "ipv6"},
		}
		if h.up {
			v.Status.State = "up"
		}
		if h.addr.Is4() {
			v.Address.Type = "ipv4"
		}
		extra, listed := extraPorts(h.ports)
		v.Ports.Extra = extra
		v.Ports.Ports = make([]xmlPort, len(listed))
		for i, r := range listed {
			p := xmlPort{Protocol: r.Proto.String(), PortID: r.Port,
				State: xmlState{State: r.State.String(), Reason: r.Reason, TTL: r.TTL}}
			if name, svc := x.service(&r); svc != nil {
				p.Service = probedService(svc)
			} else if name != "" {
				p.Service = &xmlService{Name: name, Method: "table", Conf: 3}
			}
			v.Ports.Ports[i] = p
		}
		if err := x.enc.Encode(v); err != nil {
			return err
		}
	}
	var rs xmlRunStats
	f := &rs.Finished
	f.Time, f.TimeStr, f.Elapsed = s.End.Unix(), ctime(s.End), seconds(s.Elapsed)
	f.Summary = "portkit done at " + ctime(s.End) + "; " + done(s)
	f.Exit = "success"
	if s.Exit != Success {
		// nmap.dtd knows only success and error.
		f.Exit, f.ErrorMsg = "error", string(s.Exit)
		if s.Error != "" {
			f.ErrorMsg = s.Error
		}
	}
	rs.Hosts.Up, rs.Hosts.Down, rs.Hosts.Total = s.HostsUp, s.HostsDown, s.HostsTotal
	x.enc.Encode(rs)
	x.enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: "nmaprun"}})
	if err := x.enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(x.w, "\n")
	return err
}

// Flush does nothing: hosts are written at End.
func (x *xmlWriter) Flush() error { return nil }

// extraThreshold is the most ports of one state a host's report lists one
// by one: a state with more (a full-range scan's 65,000 closed ports) is
// written as one extraports element, as nmap's XML does with the same
// bound (nmap lists 25 closed ports and collapses 26). Open ports are
// always listed. Every result, with its reason, stays in the JSON formats.
const extraThreshold = 25

// extraPorts splits a host's ports, sorted by port, into the states
// collapsed into extraports and the results still listed, in order.
func extraPorts(ports []scan.Result) ([]xmlExtraPorts, []scan.Result) {
	var count [scan.OpenFiltered + 1]int
	for _, r := range ports {
		if r.State <= scan.OpenFiltered {
			count[r.State]++
		}
	}
	collapsed := func(st scan.State) bool {
		return st != scan.Open && st <= scan.OpenFiltered && count[st] > extraThreshold
	}
	var extra []xmlExtraPorts
	for st := scan.Closed; st <= scan.OpenFiltered; st++ {
		if !collapsed(st) {
			continue
		}
		e := xmlExtraPorts{State: st.String(), Count: count[st]}
		// One extrareasons per reason and protocol, in order of first
		// port; its ports as ranges.
		type key struct {
			reason string
			proto  scan.Proto
		}
		index := map[key]int{}
		var lists [][]uint16
		for _, r := range ports {
			if r.State != st {
				continue
			}
			k := key{r.Reason, r.Proto}
			i, ok := index[k]
			if !ok {
				i = len(e.Reasons)
				index[k] = i
				e.Reasons = append(e.Reasons, xmlExtraReasons{Reason: r.Reason, Proto: r.Proto.String()})
				lists = append(lists, nil)
			}
			e.Reasons[i].Count++
			lists[i] = append(lists[i], r.Port)
		}
		for i := range e.Reasons {
			e.Reasons[i].Ports = portRanges(lists[i])
		}
		extra = append(extra, e)
	}
	if extra == nil {
		return nil, ports
	}
	listed := make([]scan.Result, 0, len(ports))
	for _, r := range ports {
		if !collapsed(r.State) {
			listed = append(listed, r)
		}
	}
	return extra, listed
}

// portRanges writes sorted ports as ranges, "1-5,7,9-12".
func portRanges(ports []uint16) string {
	var b []byte
	for k := 0; k < len(ports); {
		j := k
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(ports[k]), 10)
		if j > k {
			b = append(b, '-')
			b = strconv.AppendUint(b, uint64(ports[j]), 10)
		}
		k = j + 1
	}
	return string(b)
}
