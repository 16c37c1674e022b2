// Package spa encodes and decodes single packet authorization (SPA)
// packets in the wire format of fwknop 2.6 (protocol 3.0.0), with
// Rijndael (AES-256-CBC) encryption and an HMAC, so that portkit
// interoperates with the stock fwknop client and fwknopd.
//
// A packet is one UDP payload of base64 text. Inside, after the HMAC is
// checked and the AES layer removed, is a colon-separated message
// (Message) ending in a digest of itself. Decode checks the HMAC before
// anything else, in constant time; every failure is an *Error whose kind
// errors.Is tells (ErrBadHMAC, ErrBadPadding, ErrBadFormat, ...). Decode
// does not judge the message's age or whether it was seen before: that is
// the replay package's work, keyed by ReplayDigest.
//
// GnuPG encryption and the modes other than CBC are not supported, and an
// HMAC key is always required.
package spa
