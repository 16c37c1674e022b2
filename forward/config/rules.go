package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/portkit/portkit/forward"
)

// globalKeys are the keys of the top-level table.
func globalKeys() []string {
	return []string{"drain_timeout", "log_format", "metrics", "defaults", "rule"}
}

// ruleKeys are the keys of a [[rule]] table, in forward.Rule's order.
func ruleKeys() []string {
	return []string{
		"name", "protocol", "listen", "targets", "balance",
		"connect_timeout", "idle_timeout",
		"max_conns", "max_conns_per_source", "max_sessions",
		"allow", "deny",
		"proxy_protocol", "accept_proxy_protocol", "trusted_proxies",
	}
}

func isOneOf(key string, keys []string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// perRule are the rule keys every rule sets for itself.
func perRule(key string) bool {
	return key == "name" || key == "listen" || key == "targets"
}

// defaultApplies reports whether a [defaults] key is for rules of protocol p:
// Validate rejects the TCP-only keys in a UDP rule, and max_sessions means
// nothing to a TCP rule.
func defaultApplies(key string, p forward.Protocol) bool {
	switch key {
	case "max_conns", "max_conns_per_source", "proxy_protocol", "accept_proxy_protocol", "trusted_proxies":
		return p != forward.UDP
	case "max_sessions":
		return p == forward.UDP
	}
	return true
}

// file checks the top-level table and everything in it.
func (l *loader) file(root *table) *File {
	f := &File{}
	var defaults, rules *value
	for _, k := range root.keys {
		v := root.vals[k]
		switch k {
		case "drain_timeout":
			if d, ok := l.duration(v, k); ok {
				f.DrainTimeout = &d
			}
		case "log_format":
			if s, ok := l.str(v, k); ok {
				if lower := strings.ToLower(s); slices.Contains(forward.LogFormats(), lower) {
					f.LogFormat = lower
				} else {
					l.failf(v.line, k, "%q: want %s", s, quotedOr(forward.LogFormats()))
				}
			}
		case "metrics":
			if s, ok := l.str(v, k); ok {
				if err := CheckMetrics(s); err != nil {
					l.failf(v.line, k, "%q: %v", s, err)
				} else {
					f.Metrics = s
				}
			}
		case "defaults":
			defaults = v
		case "rule":
			rules = v
		default:
			if perRule(k) {
				l.failf(v.line, k, "a rule key outside any rule: put it under a [[rule]] line")
				continue
			}
			if isOneOf(k, ruleKeys()) {
				l.failf(v.line, k, "a rule key outside any rule: put it under a [[rule]] line, or under [defaults]")
				continue
			}
			l.unknown(v.line, keyPath("", k), k, globalKeys())
		}
	}
	def := l.defaults(defaults)
	if rules == nil {
		l.fail(0, "", ErrNoRules)
		return f
	}
	switch {
	case rules.kind == unstable.Table:
		l.failf(rules.line, "rule", "write [[rule]], not [rule]: each rule is an element of an array of tables")
		return f
	case rules.kind != unstable.Array:
		l.failf(rules.line, "rule", "want [[rule]] tables, got %s", describe(rules))
		return f
	case len(rules.items) == 0:
		l.fail(rules.line, "rule", ErrNoRules)
		return f
	}
	var ok []forward.Rule
	names := map[string]parsedRule{}
	listeners := map[string][]parsedRule{}
	for i, item := range rules.items {
		prefix := fmt.Sprintf("rule[%d]", i)
		if item.kind != unstable.Table {
			l.failf(item.line, prefix, "want a table, got %s", describe(item))
			continue
		}
		if pr, good := l.rule(prefix, item, def); good && l.unique(pr, names, listeners) {
			ok = append(ok, pr.rule)
		}
	}
	f.Rules = ok
	return f
}

// defaults checks the [defaults] table and returns its good keys, or nil
// when it is absent.
func (l *loader) defaults(v *value) *table {
	if v == nil {
		return nil
	}
	if v.kind != unstable.Table {
		l.failf(v.line, "defaults", "want a table, got %s", describe(v))
		return nil
	}
	// Only the keys that passed go on to the rules: a bad default is
	// reported once, here, rather than again in every rule.
	good := newTable()
	var scratch forward.Rule
	for _, k := range v.table.keys {
		kv := v.table.vals[k]
		key := keyPath("defaults", k)
		switch {
		case perRule(k):
			l.failf(kv.line, key, "each rule sets its own %s: it has no default", k)
		case isOneOf(k, ruleKeys()):
			n := len(l.errs)
			l.field(&scratch, k, kv, key)
			if len(l.errs) == n {
				good.set(k, kv)
			}
		default:
			l.unknownInTable(kv.line, key, k)
		}
	}
	return good
}

// unknownInTable reports a key that is not a rule key, pointing out the
// TOML trap of a global key written below a [table] line.
func (l *loader) unknownInTable(line int, key, k string) {
	if isOneOf(k, globalKeys()) {
		l.failf(line, key, "%s is a top-level key: TOML puts every key after a [table] line into that table, so move it above the first one", k)
		return
	}
	l.unknown(line, key, k, ruleKeys())
}

// keyPath joins a key to the path of its table, quoting a key that TOML
// would need quoted so that a message shows exactly which key it means.
func keyPath(table, k string) string {
	bare := k != ""
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			bare = false
			break
		}
	}
	if !bare {
		k = strconv.Quote(k)
	}
	if table == "" {
		return k
	}
	return table + "." + k
}

// unknown reports key k, suggesting the nearest of known.
func (l *loader) unknown(line int, key, k string, known []string) {
	if s := suggest(k, known); s != "" {
		l.failf(line, key, "unknown key (did you mean %q?)", s)
		return
	}
	l.failf(line, key, "unknown key (known keys: %s)", strings.Join(known, ", "))
}

// parsedRule is a rule with the lines of its keys, for messages.
type parsedRule struct {
	rule   forward.Rule
	prefix string         // "rule[i]"
	header int            // line of its [[rule]] (or inline table)
	lines  map[string]int // line of each key the rule sets itself
}

// keyLine is the line to blame for key: its own, or else the header's.
func (pr *parsedRule) keyLine(key string) int {
	if line, ok := pr.lines[key]; ok {
		return line
	}
	return pr.header
}

// rule checks one [[rule]] table and merges the defaults into it.
func (l *loader) rule(prefix string, v *value, def *table) (parsedRule, bool) {
	pr := parsedRule{prefix: prefix, header: v.line, lines: map[string]int{}}
	n := len(l.errs)
	r := &pr.rule
	for _, k := range v.table.keys {
		kv := v.table.vals[k]
		key := keyPath(prefix, k)
		if !isOneOf(k, ruleKeys()) {
			l.unknownInTable(kv.line, key, k)
			continue
		}
		pr.lines[k] = kv.line
		l.field(r, k, kv, key)
	}
	if len(l.errs) > n {
		// Validate would only repeat, less precisely, what is reported.
		return pr, false
	}
	if def != nil {
		// The protocol decides which of the other defaults apply.
		if _, set := pr.lines["protocol"]; !set && def.vals["protocol"] != nil {
			l.field(r, "protocol", def.vals["protocol"], "defaults.protocol")
		}
		for _, k := range def.keys {
			if _, set := pr.lines[k]; set || k == "protocol" || k == "trusted_proxies" || !defaultApplies(k, r.Protocol) {
				continue
			}
			l.field(r, k, def.vals[k], "defaults."+k)
		}
		// Default load balancers are for the rules that read their
		// headers; to the others they would mean nothing, which Validate
		// refuses in a rule that sets them itself.
		if _, set := pr.lines["trusted_proxies"]; !set && def.vals["trusted_proxies"] != nil && r.AcceptProxyProtocol {
			l.field(r, "trusted_proxies", def.vals["trusted_proxies"], "defaults.trusted_proxies")
		}
	}
	*r = r.WithDefaults()
	if err := r.Validate(); err != nil {
		var fe *forward.FieldError
		if !errors.As(err, &fe) {
			l.fail(pr.header, prefix, err)
			return pr, false
		}
		field := fe.Field
		line, ok := pr.lines[field]
		if !ok {
			line = pr.header
			for _, other := range standIns(field) {
				if ln, set := pr.lines[other]; set {
					field, line, ok = other, ln, true
					break
				}
			}
		}
		if ln, set := pr.lines[neededBy(field)]; !ok && set {
			line = ln
		}
		l.fail(line, prefix+"."+field, &validateError{fe: fe, protocol: r.Protocol})
		return pr, false
	}
	return pr, true
}

// standIns are the keys Validate reports as key when they are wrong
// together with it: the message names the one the rule sets.
func standIns(key string) []string {
	switch key {
	case "proxy_protocol":
		return []string{"accept_proxy_protocol"}
	case "max_conns":
		return []string{"max_conns_per_source"}
	}
	return nil
}

// neededBy is the key whose value requires key, for the line of a missing
// key.
func neededBy(key string) string {
	if key == "trusted_proxies" {
		return "accept_proxy_protocol"
	}
	return ""
}

// validateError words a forward.FieldError for a message that already
// names the rule and the key, and keeps it for errors.As.
type validateError struct {
	fe       *forward.FieldError
	protocol forward.Protocol
}

func (e *validateError) Error() string {
	// Validate gives the protocol as the value of a key that the protocol
	// rules out ("max_conns" "udp"); the message says so already.
	if e.fe.Value == "" || (e.fe.Value == string(e.protocol) && e.fe.Field != "protocol") {
		return e.fe.Err.Error()
	}
	return fmt.Sprintf("%q: %v", e.fe.Value, e.fe.Err)
}

func (e *validateError) Unwrap() error { return e.fe }

// unique reports whether pr's name and listener differ from those of the
// rules before it, which it records, and reports the problem when they do
// not. Listeners on one port clash when their hosts are the same or one of
// them is the wildcard, which takes the port on every address.
func (l *loader) unique(pr parsedRule, names map[string]parsedRule, listeners map[string][]parsedRule) bool {
	port, host := listenerKey(pr.rule)
	for _, o := range listeners[port] {
		_, oh := listenerKey(o.rule)
		if oh != host && oh != "" && host != "" {
			continue
		}
		// A name defaulted from the listener repeats too: say it once.
		how := "listens there too"
		if oh != host {
			how = "listens on the same port, and one of the two on every address"
		}
		l.failf(pr.keyLine("listen"), pr.prefix+".listen", "%s %q: %s on line %d %s (%q)",
			pr.rule.Protocol, pr.rule.Listen, o.prefix, o.keyLine("listen"), how, o.rule.Listen)
		return false
	}
	if o, dup := names[pr.rule.Name]; dup {
		l.failf(pr.keyLine("name"), pr.prefix+".name", "%q: %s on line %d has this name too",
			pr.rule.Name, o.prefix, o.keyLine("name"))
		return false
	}
	listeners[port], names[pr.rule.Name] = append(listeners[port], pr), pr
	return true
}

// listenerKey is the socket a rule listens on, as its protocol and port
// and its host, so that two spellings of one address compare equal. Go's
// "tcp" and "udp" listeners take every address, IPv4 and IPv6, for an
// empty host, "0.0.0.0" and "::" alike: host is "" for all three. Port 0
// binds a new port each time, but the forwarder tells rules apart by
// protocol and listen string, so two rules may not share ":0" either: they
// get a port of their own, host the exact listen string.
func listenerKey(r forward.Rule) (port, host string) {
	exact := string(r.Protocol) + "/" + r.Listen
	h, p, err := net.SplitHostPort(r.Listen)
	if err != nil {
		return exact, exact
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return exact, exact
	}
	host = h
	if a, err := netip.ParseAddr(host); err == nil {
		if a.IsUnspecified() {
			host = ""
		} else {
			host = a.Unmap().String()
		}
	} else {
		host = strings.ToLower(host)
	}
	return string(r.Protocol) + " " + strconv.FormatUint(n, 10), host
}

// field sets rule key k from v, reporting any problem under key.
func (l *loader) field(r *forward.Rule, k string, v *value, key string) {
	switch k {
	case "name":
		if s, ok := l.str(v, key); ok {
			if s == "" {
				l.failf(v.line, key, "must not be empty (leave it out for the default PROTO/LISTEN)")
				return
			}
			r.Name = s
		}
	case "protocol":
		if s, ok := l.str(v, key); ok {
			switch p := forward.Protocol(strings.ToLower(s)); p {
			case forward.TCP, forward.UDP:
				r.Protocol = p
			default:
				l.failf(v.line, key, "%q: want \"tcp\" or \"udp\"", s)
			}
		}
	case "listen":
		if s, ok := l.str(v, key); ok {
			r.Listen, _ = l.listen(v, key, s)
		}
	case "targets":
		targets := []string{}
		ok := l.eachStr(v, key, func(it *value) {
			if err := checkTarget(it.text); err != nil {
				l.failf(it.line, key, "%q: %v", it.text, err)
				return
			}
			targets = append(targets, it.text)
		})
		if ok {
			r.Targets = targets
		}
	case "balance":
		if s, ok := l.str(v, key); ok {
			if b, err := forward.ParseBalance(s); err == nil {
				r.Balance = b
			} else {
				l.failf(v.line, key, "%q: want %s", s, quotedOr(forward.Balances()))
			}
		}
	case "connect_timeout":
		r.ConnectTimeout, _ = l.duration(v, key)
	case "idle_timeout":
		// Written 0 to switch the default off: a rule that leaves the key
		// out gets the default.
		if d, ok := l.duration(v, key); ok && d == 0 {
			r.IdleTimeout = forward.NoLimit
		} else {
			r.IdleTimeout = d
		}
	case "max_conns":
		r.MaxConns, _ = l.count(v, key)
	case "max_conns_per_source":
		if n, ok := l.count(v, key); ok && n == 0 {
			r.MaxConnsPerSource = forward.NoLimit
		} else {
			r.MaxConnsPerSource = n
		}
	case "max_sessions":
		r.MaxSessions, _ = l.count(v, key)
	case "allow":
		r.Allow = l.prefixes(v, key)
	case "deny":
		r.Deny = l.prefixes(v, key)
	case "trusted_proxies":
		r.TrustedProxies = l.prefixes(v, key)
	case "proxy_protocol":
		r.ProxyProtocol = l.proxyVersion(v, key)
	case "accept_proxy_protocol":
		if v.kind != unstable.Bool {
			l.failf(v.line, key, "want true or false, got %s", describe(v))
			return
		}
		r.AcceptProxyProtocol = v.text == "true"
	}
}

// describe names a value's type, and the value when it is short, for
// messages about a wrong type.
func describe(v *value) string {
	switch v.kind {
	case unstable.Array, unstable.Table:
		return "a " + kindName(v.kind)
	}
	text := v.text
	if v.kind == unstable.String {
		text = strconv.Quote(text)
	}
	if len(text) > 40 {
		return "a " + kindName(v.kind)
	}
	return fmt.Sprintf("%s %s", article(kindName(v.kind)), text)
}

func article(noun string) string {
	if strings.IndexByte("aeiou", noun[0]) >= 0 {
		return "an " + noun
	}
	return "a " + noun
}

func (l *loader) str(v *value, key string) (string, bool) {
	if v.kind != unstable.String {
		l.failf(v.line, key, "want a string, got %s", describe(v))
		return "", false
	}
	return v.text, true
}

// eachStr calls fn with each string element of an array, in order, and
// reports the elements that are not strings; the elements keep their own
// lines for messages about one of them. It returns false when v is not an
// array at all.
func (l *loader) eachStr(v *value, key string, fn func(item *value)) bool {
	if v.kind != unstable.Array {
		l.failf(v.line, key, "want an array of strings, like [\"a\", \"b\"], got %s", describe(v))
		return false
	}
	for _, it := range v.items {
		if it.kind != unstable.String {
			l.failf(it.line, key, "want a string, got %s", describe(it))
			continue
		}
		fn(it)
	}
	return true
}

func (l *loader) duration(v *value, key string) (time.Duration, bool) {
	if v.kind != unstable.String {
		l.failf(v.line, key, "want a duration string like \"30s\" or \"5m\", got %s", describe(v))
		return 0, false
	}
	d, err := time.ParseDuration(v.text)
	if err != nil {
		l.failf(v.line, key, "bad duration %q: want a number and a unit, like \"30s\", \"5m\" or \"1h30m\"", v.text)
		return 0, false
	}
	if d < 0 {
		l.failf(v.line, key, "%q: must not be negative", v.text)
		return 0, false
	}
	return d, true
}

// count reads a non-negative integer.
func (l *loader) count(v *value, key string) (int, bool) {
	if v.kind != unstable.Integer {
		l.failf(v.line, key, "want an integer, got %s", describe(v))
		return 0, false
	}
	n, err := parseInteger(v.text)
	switch {
	case err != nil || n > math.MaxInt:
		l.failf(v.line, key, "%s: too large", v.text)
	case n < 0:
		l.failf(v.line, key, "%s: must not be negative", v.text)
	default:
		return int(n), true
	}
	return 0, false
}

// parseInteger reads a TOML integer as written: decimal with an optional
// sign, or 0x, 0o, 0b, with underscores between digits. The document has
// already passed go-toml, so only the value is in question.
func parseInteger(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'o', 'b':
			// ParseInt with base 0 reads the same prefixes; TOML allows
			// no leading zeros, so a "0" prefix here is never octal.
			return strconv.ParseInt(s, 0, 64)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// proxyVersion reads proxy_protocol: "v1", "v2" or 1, 2, and "none" or 0 so
// that a rule can turn off a default.
func (l *loader) proxyVersion(v *value, key string) int {
	switch v.kind {
	case unstable.String:
		if strings.EqualFold(v.text, "none") {
			return 0
		}
		if i := slices.Index(forward.ProxyVersions(), strings.ToLower(v.text)); i >= 0 {
			return i + 1
		}
	case unstable.Integer:
		if n, err := parseInteger(v.text); err == nil && n >= 0 && n <= int64(len(forward.ProxyVersions())) {
			return int(n)
		}
	}
	l.failf(v.line, key, "want %s (or \"none\"), got %s", quotedOr(forward.ProxyVersions()), describe(v))
	return 0
}

// prefixes reads an array of CIDRs and bare addresses.
func (l *loader) prefixes(v *value, key string) []netip.Prefix {
	var ps []netip.Prefix
	l.eachStr(v, key, func(it *value) {
		p, err := forward.ParsePrefix(it.text)
		if err != nil {
			l.fail(it.line, key, err)
			return
		}
		ps = append(ps, p)
	})
	return ps
}

// listen checks a listen address and returns it as the forwarder takes it.
func (l *loader) listen(v *value, key, s string) (string, bool) {
	if p, _, ok := strings.Cut(s, "/"); ok {
		if strings.EqualFold(p, "tcp") || strings.EqualFold(p, "udp") {
			l.failf(v.line, key, "%q: the protocol is its own key here: protocol = %q", s, strings.ToLower(p))
		} else {
			l.failf(v.line, key, "%q: want [host]:port", s)
		}
		return "", false
	}
	// ParseProtoListen is the command line's reading, so a bare port means
	// the same in both.
	_, addr, err := forward.ParseProtoListen(s)
	if err != nil {
		var fe *forward.FieldError
		if errors.As(err, &fe) {
			err = fe.Err
		}
		l.failf(v.line, key, "%q: %v", s, err)
		return "", false
	}
	return addr, true
}

// checkTarget applies Validate's own check of a target, so that the file
// accepts exactly what the forwarder does, with the element's line.
func checkTarget(t string) error {
	err := forward.Rule{Listen: ":0", Targets: []string{t}}.Validate()
	var fe *forward.FieldError
	if errors.As(err, &fe) {
		return fe.Err
	}
	return err
}

// CheckMetrics checks the metrics listen address, host:port: the metrics
// key here and --metrics on the command line.
func CheckMetrics(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /") {
		return errors.New("want host:port, like \"127.0.0.1:9100\"")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// quotedOr writes the words a key takes as the file writes them:
// "a" or "b".
func quotedOr[T ~string](words []T) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(string(w))
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
