//go:build !linux

package hostports

// Read returns ErrUnsupported: only Linux's policy is read so far.
func (r Reader) Read() (Policy, error) { return Policy{}, ErrUnsupported }
