package service

import (
	"bufio"
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP (RFC 9110, RFC 9112) and the applications recognised from their
// own responses: Elasticsearch and OpenSearch, Docker's and Kubernetes's
// APIs, Prometheus exporters, etcd, Consul; and WebSocket (RFC 6455).

// httpWait is the least an HTTP response is waited for.
const httpWait = 2 * time.Second

var httpDetector = &detector{name: "http", ports: []uint16{80, 443, 8000, 8008, 8080, 8443, 8888, 9200, 2375, 2376, 6443, 9090, 9100, 2379, 8500},
	probe: probeHTTP}

// httpReply is one parsed HTTP response.
type httpReply struct {
	status int
	line   string
	header http.Header
	body   []byte
}

// get requests path on the session and parses the reply; nil when the
// reply is not HTTP.
func get(s *session, path string, extra string) *httpReply {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + hostHeader(s) + "\r\nUser-Agent: portkit\r\nAccept: */*\r\n" + extra + "Connection: close\r\n\r\n"
	if s.send([]byte(req)) != nil {
		return nil
	}
	// A web application may take a while to render its page: HTTP gets
	// longer than other protocols' replies.
	return parseHTTP(s.read(max(s.t.replyWait(), httpWait), httpDone))
}

func hostHeader(s *session) string {
	h := s.t.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + portOf(s.t.addr)
}

// httpDone reports a whole response: the header, and as much body as
// Content-Length says (or the header alone when it says none).
func httpDone(b []byte) bool {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return false
	}
	head := strings.ToLower(string(b[:end]))
	i := strings.Index(head, "\ncontent-length:")
	if i < 0 {
		return strings.Contains(head, "\ntransfer-encoding: chunked") && bytes.HasSuffix(b, []byte("0\r\n\r\n"))
	}
	v, _, _ := strings.Cut(head[i+len("\ncontent-length:"):], "\n")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return err != nil || len(b)-end-4 >= n
}

// parseHTTP parses a response, tolerating one cut short by the byte cap
// or the deadline.
func parseHTTP(b []byte) *httpReply {
	if !bytes.HasPrefix(b, []byte("HTTP/1.")) && !bytes.HasPrefix(b, []byte("HTTP/2")) {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return &httpReply{line: firstLine(b)}
	}
	body, _ := io.ReadAll(resp.Body)
	return &httpReply{status: resp.StatusCode, line: firstLine(b), header: resp.Header, body: body}
}

// Compiled on first use, not at package init: a command that never
// detects a service does not pay for it.
var titleRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`) })

func probeHTTP(s *session) (Result, bool) {
	rep := get(s, "/", "")
	if rep == nil {
		return Result{}, false
	}
	r := Result{Service: "http", Confidence: 8, Evidence: quote(rep.line)}
	if rep.header == nil {
		return r, true
	}
	if sv := rep.header.Get("Server"); sv != "" {
		serverHeader(sv, &r)
		r.Evidence += "; Server: " + quote(sv)
	}
	var info []string
	if m := titleRE().FindSubmatch(rep.body); m != nil {
		title := strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
		if title != "" {
			info = append(info, "title "+strconv.Quote(truncate(title, 80)))
		}
	}
	if loc := rep.header.Get("Location"); loc != "" && rep.status >= 300 && rep.status < 400 {
		info = append(info, "redirect to "+truncate(loc, 120))
	}
	r.Info = strings.Join(info, ", ")
	app(s, rep, &r)
	return r, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// serverHeader reads "product/version (comment)" from a Server header.
func serverHeader(sv string, r *Result) {
	first, comment, _ := strings.Cut(sv, " ")
	product, version, _ := strings.Cut(first, "/")
	switch strings.ToLower(product) {
	case "apache":
		product = "Apache httpd"
	case "nginx":
		product = "nginx"
	}
	r.Product, r.Version = product, version
	if r.Version != "" {
		r.Confidence = 10
	}
	if c := strings.Trim(comment, "()"); c != "" && r.Info == "" && !strings.ContainsAny(c, "/") {
		r.Info = c
	}
}

// app recognises the applications behind an HTTP server from their own
// responses, asking one more path where the first answer hints at one.
func app(s *session, rep *httpReply, r *Result) {
	body := rep.body
	var js map[string]any
	_ = json.Unmarshal(body, &js)
	switch {
	case js != nil && js["tagline"] == "You Know, for Search":
		v, _ := js["version"].(map[string]any)
		r.Service, r.Product, r.Confidence = "elasticsearch", "Elasticsearch", 10
		if v != nil {
			r.Version, _ = v["number"].(string)
			if v["distribution"] == "opensearch" {
				r.Product = "OpenSearch"
			}
		}
		r.Evidence = `JSON "tagline":"You Know, for Search"`
		return
	case strings.HasPrefix(rep.header.Get("Server"), "Docker/") || rep.header.Get("Api-Version") != "" && rep.header.Get("Docker-Experimental") != "":
		r.Service, r.Product, r.Confidence = "docker", "Docker Engine API", 10
		r.Version = strings.TrimPrefix(firstField(rep.header.Get("Server")), "Docker/")
		r.Info = "API " + rep.header.Get("Api-Version")
		r.Evidence = "Server: " + quote(rep.header.Get("Server"))
		return
	case js != nil && js["kind"] == "Status" && js["apiVersion"] == "v1":
		r.Service, r.Product, r.Confidence = "kubernetes", "Kubernetes API server", 8
		r.Evidence = `JSON "kind":"Status","apiVersion":"v1"`
		if v := follow(s, "/version"); v != nil {
			var ver struct {
				GitVersion string `json:"gitVersion"`
			}
			if json.Unmarshal(v.body, &ver) == nil && ver.GitVersion != "" {
				r.Version, r.Confidence = strings.TrimPrefix(ver.GitVersion, "v"), 10
			}
		}
		return
	case rep.header.Get("X-Consul-Default-Acl-Policy") != "" || strings.HasPrefix(rep.header.Get("Location"), "/ui/"):
		if v := follow(s, "/v1/agent/self"); v != nil {
			var self struct {
				Config struct{ Version, Datacenter string }
			}
			if json.Unmarshal(v.body, &self) == nil && self.Config.Version != "" {
				r.Service, r.Product, r.Version, r.Confidence = "consul", "Consul", self.Config.Version, 10
				r.Evidence = "/v1/agent/self: Config.Version"
				return
			}
			if v.header.Get("X-Consul-Default-Acl-Policy") != "" || rep.header.Get("X-Consul-Default-Acl-Policy") != "" {
				r.Service, r.Product, r.Confidence = "consul", "Consul", 8
				r.Evidence = "X-Consul-Default-Acl-Policy header"
			}
		}
		return
	case rep.status == http.StatusUpgradeRequired || strings.EqualFold(rep.header.Get("Upgrade"), "websocket") ||
		rep.status == http.StatusBadRequest && bytes.Contains(bytes.ToLower(body), []byte("websocket")):
		if websocket(s) {
			r.Service, r.Confidence = "websocket", 10
			r.Evidence = "101 Switching Protocols with the RFC 6455 Sec-WebSocket-Accept"
		}
		return
	case bytes.Contains(body, []byte(`href="/metrics"`)) || bytes.Contains(body, []byte("Exporter")) || rep.status == http.StatusNotFound:
		if v := follow(s, "/metrics"); v != nil && v.status == http.StatusOK && bytes.Contains(v.body, []byte("# TYPE ")) {
			prometheus(v.body, r)
			return
		}
		if rep.status == http.StatusNotFound {
			etcd(s, r)
		}
	}
}

// follow asks path on a new session over the same transport.
func follow(s *session, path string) *httpReply {
	ns, err := s.t.open(s.ctx, s.tls != nil, alpnHTTP1(s))
	if err != nil {
		return nil
	}
	defer ns.close()
	return get(ns, path, "")
}

func alpnHTTP1(s *session) []string {
	if s.tls == nil {
		return nil
	}
	return []string{"http/1.1"}
}

var buildInfoRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(\w+)_build_info\{[^}]*\bversion="([^"]*)"`)
})

// prometheus recognises the text exposition format of Prometheus
// ("# TYPE" lines) and names the exporter from its *_build_info metric.
func prometheus(metrics []byte, r *Result) {
	r.Service, r.Confidence = "prometheus", 8
	r.Evidence = "/metrics: Prometheus text exposition"
	for _, m := range buildInfoRE().FindAllSubmatch(metrics, -1) {
		name := string(m[1])
		if name == "go" {
			continue
		}
		r.Product, r.Version, r.Confidence = name, string(m[2]), 10
		r.Evidence = "/metrics: " + name + "_build_info version"
		return
	}
}

// etcd asks /version, which etcd answers with its server and cluster
// versions.
func etcd(s *session, r *Result) {
	v := follow(s, "/version")
	if v == nil {
		return
	}
	var ver struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}
	if json.Unmarshal(v.body, &ver) == nil && ver.Server != "" {
		r.Service, r.Product, r.Version, r.Confidence = "etcd", "etcd", ver.Server, 10
		r.Evidence = "/version: etcdserver " + ver.Server
	}
}

// websocket sends the opening handshake of RFC 6455 §4.1 with §1.3's
// example key; a server accepts with the example's Sec-WebSocket-Accept.
func websocket(s *session) bool {
	ns, err := s.t.open(s.ctx, s.tls != nil, alpnHTTP1(s))
	if err != nil {
		return false
	}
	defer ns.close()
	req := "GET / HTTP/1.1\r\nHost: " + hostHeader(ns) + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	b := ns.exchange([]byte(req), func(b []byte) bool { return bytes.Contains(b, []byte("\r\n\r\n")) })
	rep := parseHTTP(b)
	return rep != nil && rep.status == http.StatusSwitchingProtocols &&
		rep.header.Get("Sec-Websocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
}
