package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/hostports"
	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/registry"
)

// servicesEnv overrides where the local services overlay is read from; set
// and empty, it turns the overlay off.
const servicesEnv = "PORTKIT_SERVICES"

// lookupRow is one answer row, as --json writes it.
type lookupRow struct {
	Query        string     `json:"query"`
	Service      string     `json:"service"`
	Port         *uint16    `json:"port"`
	PortEnd      *uint16    `json:"port_end,omitempty"`
	DefaultPort  uint16     `json:"default_port,omitempty"`
	Protocol     string     `json:"protocol"`
	Status       string     `json:"status"`
	Description  string     `json:"description"`
	References   []string   `json:"references"`
	Range        string     `json:"range,omitempty"`
	Source       string     `json:"source"`
	AliasOf      string     `json:"alias_of,omitempty"`
	Assignee     string     `json:"assignee,omitempty"`
	Contact      string     `json:"contact,omitempty"`
	Registered   string     `json:"registered,omitempty"`
	Modified     string     `json:"modified,omitempty"`
	Notes        string     `json:"notes,omitempty"`
	Unauthorized string     `json:"unauthorized_use,omitempty"`
	Local        *localFact `json:"local,omitempty"`
}

type localFact struct {
	Ephemeral  bool `json:"ephemeral"`
	Privileged bool `json:"privileged"`
}

func newLookup(e *env) *cobra.Command {
	var (
		searches []string
		protocol string
		services string
	)
	cmd := &cobra.Command{
		Use:   "lookup QUERY...",
		Short: "What a port number or service name means, from the IANA registry",
		Long: `Look up ports and service names in IANA's Service Name and Transport Protocol
Port Number Registry, embedded in portkit (no network needed).

A QUERY is a port (5432), a port and protocol (53/udp), a range (6000-6010),
a service name or alias (ssh, www, PostgreSQL), or a URL (https://h:8443/,
postgres://db/app). Names in the local services file (/etc/services, or
$PORTKIT_SERVICES; --services) that IANA lacks are answered too, marked with
their source. On Linux each answer also tells whether the port is in this
host's ephemeral range and whether binding it needs privileges.

Exit status: 0 when every query is answered (an unassigned port is an
answer), 1 when none is (a name or search that finds nothing), 3 when some
are, 2 on a bad query.`,
		Example: `  portkit lookup 5432
  portkit lookup 53/udp ldaps www
  portkit lookup 6000-6010
  portkit lookup https://example.com:8443/x postgres://db/app
  portkit lookup --search kerberos
  portkit lookup -p udp 161 --json`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(searches) == 0 {
				return usagef("lookup: give a QUERY or --search WORD (see portkit lookup --help)")
			}
			proto := registry.AnyProto
			if cmd.Flags().Changed("protocol") { // -p '' is a bad value, not no value
				var err error
				if proto, err = registry.ParseProto(protocol); err != nil {
					return flagValueError("--protocol", protocol, err)
				}
			}
			// Where the overlay was named (flag, else variable), for
			// errors; "" for the system's file, which may be absent.
			source := ""
			if cmd.Flags().Changed("services") {
				source = "--services"
			} else {
				services = registry.ServicesFile
				if v, ok := e.LookupEnv(servicesEnv); ok {
					services, source = v, "$"+servicesEnv
				}
			}
			return runLookup(e, args, searches, proto, services, source)
		}),
	}
	cmd.Flags().StringArrayVarP(&searches, "search", "s", nil, "search service names and descriptions for `WORD` (repeatable)")
	cmd.Flags().StringVarP(&protocol, "protocol", "p", "", "only `PROTO` (tcp, udp, sctp, dccp)")
	cmd.Flags().StringVar(&services, "services", registry.ServicesFile, "local services `FILE` read as an overlay (empty: none)")
	return cmd
}

func runLookup(e *env, queries, searches []string, proto registry.Proto, services, source string) error {
	reg, err := registry.Open(registry.Options{Services: services})
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && source == "":
		// No local services file on this system: IANA alone.
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		if source == "" {
			source = "services overlay"
		}
		return usagef("%s: %w", source, err)
	default:
		e.warnf("warning: services overlay: %v", err)
	}
	policy, policyErr := hostports.Read()

	var (
		rows     []lookupRow
		answered tally
		usage    bool
	)
	fail := func(c int, err error) {
		e.warnf("%v", err)
		usage = usage || c == ExitUsage
		answered.add(c == ExitOK)
	}
	for _, in := range queries {
		q, err := registry.ParseQuery(in)
		if err != nil {
			fail(ExitUsage, err)
			continue
		}
		if proto != registry.AnyProto && q.Kind != registry.URLQuery {
			if q.Proto != registry.AnyProto && q.Proto != proto {
				fail(ExitUsage, fmt.Errorf("query %q asks for %v but --protocol is %v", in, q.Proto, proto))
				continue
			}
			q.Proto = proto
		}
		a, err := reg.Lookup(q)
		if err != nil {
			fail(ExitNegative, err)
			continue
		}
		answered.add(true)
		for _, s := range a.Services {
			rows = append(rows, newLookupRow(in, a, s, policy, policyErr == nil))
		}
	}
	for _, word := range searches {
		if strings.TrimSpace(word) == "" {
			fail(ExitUsage, errors.New("--search: empty word (every service would match)"))
			continue
		}
		found := reg.AppendSearch(nil, word, proto)
		if len(found) == 0 {
			fail(ExitNegative, fmt.Errorf("no service name or description contains %q", word))
		} else {
			answered.add(true)
		}
		for _, s := range found {
			rows = append(rows, newLookupRow(word, registry.Answer{}, s, policy, policyErr == nil))
		}
	}
	if err := printLookup(e, rows); err != nil {
		return err
	}
	if usage {
		return &exitError{code: ExitUsage}
	}
	return answered.err()
}

func newLookupRow(query string, a registry.Answer, s registry.Service, policy hostports.Policy, havePolicy bool) lookupRow {
	r := lookupRow{
		Query: query, Service: s.Name, Protocol: s.Proto.String(), Description: s.Description,
		References: s.ReferenceList(), Source: s.Source.String(), AliasOf: s.AliasOf,
		Assignee: s.Assignee, Contact: s.Contact, Registered: s.Registered, Modified: s.Modified,
		Notes: s.Notes, Unauthorized: s.UnauthorizedUse, Status: s.Status(),
	}
	if r.References == nil {
		r.References = []string{}
	}
	if !s.HasPort {
		return r
	}
	lo, hi := s.Port, s.PortEnd
	if a.Query.Kind == registry.URLQuery {
		// The URL's port, which may differ from the service's default.
		lo, hi = a.Port, a.Port
		r.DefaultPort = a.DefaultPort
	}
	r.Port = &lo
	if hi != lo {
		r.PortEnd = &hi
	}
	r.Range = registry.RangeOf(lo).String()
	if havePolicy {
		r.Local = &localFact{
			Ephemeral:  policy.EphemeralLow <= hi && lo <= policy.EphemeralHigh,
			Privileged: policy.Privileged(lo),
		}
	}
	return r
}

func printLookup(e *env, rows []lookupRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		if rows == nil {
			rows = []lookupRow{}
		}
		return p.JSON(rows)
	}
	if len(rows) == 0 {
		return nil
	}
	t := p.Table("PORT", "PROTO", "SERVICE", "RANGE", "LOCAL", "REFERENCES", "DESCRIPTION")
	for _, r := range rows {
		port := "-"
		if r.Port != nil {
			port = strconv.Itoa(int(*r.Port))
			if r.PortEnd != nil {
				port += "-" + strconv.Itoa(int(*r.PortEnd))
			}
		}
		service, style := r.Service, output.Bold
		switch {
		case service == "" && r.Status == "assigned":
			service, style = "-", output.Plain // IANA rows that assign a port without a name
		case service == "":
			service, style = "("+r.Status+")", output.Dim
		}
		if r.AliasOf != "" {
			service += " (alias of " + r.AliasOf + ")"
		}
		if r.Source != "iana" {
			service += " [" + r.Source + "]"
		}
		desc := r.Description
		if r.DefaultPort != 0 && r.Port != nil && *r.Port != r.DefaultPort {
			desc += fmt.Sprintf(" (default port %d)", r.DefaultPort)
		}
		t.StyledRow(
			output.Cell{Text: port},
			output.Cell{Text: orDash(r.Protocol)},
			output.Cell{Text: service, Style: style},
			output.Cell{Text: orDash(r.Range)},
			output.Cell{Text: localText(r.Local)},
			output.Cell{Text: orDash(strings.Join(r.References, " "))},
			output.Cell{Text: desc},
		)
	}
	return t.Flush()
}

func localText(l *localFact) string {
	if l == nil {
		return "-"
	}
	var parts []string
	if l.Privileged {
		parts = append(parts, "privileged")
	}
	if l.Ephemeral {
		parts = append(parts, "ephemeral")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
