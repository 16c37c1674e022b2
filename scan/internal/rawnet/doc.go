// Package rawnet is the raw packet I/O under portkit's SYN and UDP engines,
// in pure Go on Linux: no cgo, no libpcap.
//
// # Packets
//
// AppendTCP and AppendUDP build whole IPv4 or IPv6 packets with their
// checksums (the transport checksum over the pseudo-header). ParseReply reads
// what comes back: a TCP segment (SYN-ACK, RST), a UDP datagram, or an ICMPv4
// or ICMPv6 error together with the header of the probe it is about, which
// is how an error is matched to its probe (Reply.Flow). ParseReply does not
// verify checksums: on loopback and veth links the kernel hands packets over
// with the checksum left to offload, and the filter below has already chosen
// what to read.
//
// # Stateless validation
//
// A SYN's sequence number is Cookie(key, …): SipHash-2-4 of the probe's
// addresses and ports under a key that lives only as long as the scan. A
// SYN-ACK or RST answering the probe acknowledges cookie+1; ValidCookie
// ignores anything else, so a scanner keeps no state per probe to tell its
// own answers from stray or forged packets.
//
// # Sending
//
// A Sender writes whole IP packets through raw sockets (IPv4 with
// IP_HDRINCL, IPv6 with IPPROTO_RAW, which implies the header is included),
// many per system call with sendmmsg. The kernel still routes each packet
// (picking the interface and resolving the next hop), so no link-layer
// header or ARP is needed, and netfilter's OUTPUT chain still applies
// (as does connection tracking, where a ruleset loads it: every probe
// then takes an entry in the conntrack table).
//
// # Receiving
//
// A Receiver reads replies through internal/packetring (an AF_PACKET
// socket, a classic BPF filter and a TPACKET_V3 ring, shared with the
// knock daemon and the scan sensor) with a filter that passes only TCP and
// UDP to portkit's source port and ICMP errors about probes sent from that
// port: the kernel drops everything else before copying it. Outgoing
// packets are skipped.
//
// # The half-open connection
//
// A SYN sent through a raw socket creates no socket in the kernel. When the
// SYN-ACK comes back, the kernel finds nothing listening on or connected to
// portkit's source port and answers with a RST itself, which ends the
// half-open connection on the target: the scanner need not send its own.
// (AppendTCP with FlagRST and Seq set to the reply's Ack builds one, for a
// host where the kernel's RST is suppressed, e.g. by a firewall rule.)
// ReservePort binds, without listening, a TCP and a UDP socket on the source
// port: no local connection can then be given that port (its SYN-ACKs would
// be taken for replies), the kernel still resets SYN-ACKs to it, and UDP
// replies land in a socket instead of drawing ICMP port-unreachable errors
// back to the target.
//
// # Choosing the source
//
// LookupRoute asks the kernel which source address and interface it would
// use for a destination, by connecting a UDP socket to it and reading the
// local address: connect on a UDP socket only consults the routing table and
// sends nothing.
package rawnet
