// Package proxyproto reads and writes the header of the PROXY protocol,
// version 1 (a line of text) and version 2 (binary), as specified by HAProxy
// in doc/proxy-protocol.txt of its sources.
//
// A proxy that relays a connection hides the client: the backend sees a
// connection from the proxy. The PROXY protocol gives the client back. Before
// any payload, the proxy sends the backend one header naming the original
// source (the client) and destination (the address the client connected
// to); the backend reads it, uses those addresses for logging and access
// control, and then speaks its own protocol as usual. HAProxy, nginx, Envoy,
// cloud load balancers (AWS NLB, GCP, Azure), Postfix, Dovecot and many
// others send or accept it.
//
// portkit forward uses it both ways:
//
//   - As a sender, the forwarder writes ForConn(client, local).Format(v) to
//     each backend connection before relaying, so that backends configured to
//     expect the header still see the real clients.
//   - As a receiver, the forwarder calls Read on connections accepted from a
//     front load balancer that sends the header.
//
// A header is a claim anyone can write. A receiver must therefore accept it
// only from trusted front proxies, and from them it must require it: the
// protocol forbids guessing whether a header is present, because a listener
// that takes the header from anyone lets any client spoof its address. Read
// returns an error wrapping ErrNoHeader, leaving the reader untouched, when
// a connection does not start with a PROXY signature, so that the caller can
// drop it.
//
// Read waits until the whole header has arrived; the caller bounds that wait
// with a read deadline on the connection (the spec suggests a few seconds).
// Read takes a *bufio.Reader because a v1 header has no length: Read peeks
// at the signature, then consumes exactly the header's bytes and leaves the
// payload after it in the reader.
//
// Version 2 can carry UDP; how headers are framed on datagrams is up to the
// caller. Version 2 TLVs are kept raw and not interpreted; in particular a
// PP2_TYPE_CRC32C checksum is not verified, which the spec permits.
package proxyproto
