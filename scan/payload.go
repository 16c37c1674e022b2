package scan

import "github.com/portkit/portkit/scan/internal/payloads"

// UDPPayload returns the payload the UDP engine sends to port by default:
// a minimal request of the protocol usually found there, written from its
// specification, or nil for an empty datagram. Service detection sends
// the same requests and parses the replies. The bytes are shared: the
// caller must not modify them.
func UDPPayload(port uint16) []byte { return payloads.For(port) }
