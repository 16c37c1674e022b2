package scan

// SYNOptions configures the SYN engine. The zero value is ready.
type SYNOptions struct {
	// SourcePort is the port every probe is sent from, reserved for the
	// scan; 0 picks a free one.
	SourcePort uint16
	// Batch is the most probes queued before they are written, with one
	// sendmmsg; 0 means 256.
	Batch int
}

// NewSYN returns the SYN engine: a TCP SYN per probe, built whole and
// written through a raw socket, and the answers read from an AF_PACKET
// socket whose BPF filter passes only what comes to the scan's source
// port. It keeps no state per probe: the sequence number of each SYN is a
// keyed hash of its addresses and ports (the key drawn afresh for each
// engine), the same for every attempt, and an answer that does not
// acknowledge it is ignored. A SYN-ACK is open ("syn-ack"), a RST closed ("reset"), an ICMP
// unreachable filtered (its reason, "host-unreach", "admin-prohibited",
// …); the kernel, which knows nothing of the half-open connection, resets
// it when the SYN-ACK comes.
//
// It needs Linux and root or CAP_NET_RAW: without the privilege the error
// is a *PrivilegeError; elsewhere it wraps errors.ErrUnsupported. It opens
// its sockets in the calling thread's network namespace, and looks up the
// source address for each destination (once per /24, or /64 for IPv6) in
// the namespace of the thread that calls Send.
func NewSYN(opts SYNOptions) (Engine, error) { return newSYN(opts) }

// PrivilegeError is the error of an engine that needs raw sockets where
// the process may not open them.
type PrivilegeError struct {
	Engine string // "syn" or "udp"
	Err    error  // what the system said
}

func (e *PrivilegeError) Error() string {
	if e.Engine == "syn" {
		return "SYN scan needs root or CAP_NET_RAW; use the connect scan (" + e.Err.Error() + ")"
	}
	return "raw " + e.Engine + " scan needs root or CAP_NET_RAW; use its socket mode (" + e.Err.Error() + ")"
}

func (e *PrivilegeError) Unwrap() error { return e.Err }
