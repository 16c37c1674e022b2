package service

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strconv"
	"time"
)

// TLSInfo is a TLS session as the client saw it, and the certificate the
// server sent.
type TLSInfo struct {
	Version  string `json:"version"` // "TLSv1.3"
	Cipher   string `json:"cipher"`
	ALPN     string `json:"alpn,omitempty"`
	StartTLS string `json:"starttls,omitempty"` // the protocol's upgrade used, when not direct TLS
	// Chain is how many certificates the server sent.
	Chain int          `json:"chain"`
	Cert  *Certificate `json:"certificate,omitempty"`
}

// Certificate is the server's leaf certificate.
type Certificate struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	SANs       []string  `json:"sans,omitempty"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	DaysLeft   int       `json:"days_left"` // negative once expired
	SelfSigned bool      `json:"self_signed"`
	KeyType    string    `json:"key_type"` // "RSA", "ECDSA", "Ed25519"
	KeyBits    int       `json:"key_bits,omitempty"`
	Serial     string    `json:"serial"`
	SHA256     string    `json:"sha256"`
}

// tlsVersion names a TLS version as OpenSSL does.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1.0"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}

func tlsInfo(st *tls.ConnectionState, now time.Time) *TLSInfo {
	ti := &TLSInfo{
		Version: tlsVersion(st.Version),
		Cipher:  tls.CipherSuiteName(st.CipherSuite),
		ALPN:    st.NegotiatedProtocol,
		Chain:   len(st.PeerCertificates),
	}
	if len(st.PeerCertificates) > 0 {
		ti.Cert = certInfo(st.PeerCertificates[0], now)
	}
	return ti
}

func certInfo(c *x509.Certificate, now time.Time) *Certificate {
	sum := sha256.Sum256(c.Raw)
	ci := &Certificate{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		DaysLeft:  int(c.NotAfter.Sub(now).Hours() / 24),
		Serial:    c.SerialNumber.Text(16),
		SHA256:    hex.EncodeToString(sum[:]),
	}
	if c.NotAfter.Before(now) && ci.DaysLeft == 0 {
		ci.DaysLeft = -1
	}
	ci.SANs = append(ci.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ci.SANs = append(ci.SANs, ip.String())
	}
	ci.SANs = append(ci.SANs, c.EmailAddresses...)
	for _, u := range c.URIs {
		ci.SANs = append(ci.SANs, u.String())
	}
	// Self-signed: issued by its own subject and signed by its own key
	// (CheckSignatureFrom would also want it marked a CA, which a server's
	// self-made certificate often is not).
	ci.SelfSigned = bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		ci.KeyType, ci.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		ci.KeyType, ci.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		ci.KeyType, ci.KeyBits = "Ed25519", 256
	default:
		ci.KeyType = c.PublicKeyAlgorithm.String()
	}
	return ci
}

// String is the session in a few words for a table cell: the version,
// "via STARTTLS" when upgraded, the certificate's subject and days left.
func (t *TLSInfo) String() string {
	if t == nil {
		return ""
	}
	s := t.Version
	if t.StartTLS != "" {
		s += " via STARTTLS"
	}
	if c := t.Cert; c != nil {
		s += " " + c.Subject + " " + strconv.Itoa(c.DaysLeft) + "d"
		if c.SelfSigned {
			s += " self-signed"
		}
	}
	return s
}
