//go:build !linux

package rawnet

import (
	"errors"
	"testing"
)

func TestUnsupported(t *testing.T) {
	if _, err := NewSender(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("NewSender: %v, want ErrUnsupported", err)
	}
	if _, err := NewReceiver(ReceiverConfig{Port: 1}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("NewReceiver: %v, want ErrUnsupported", err)
	}
	if _, err := ReservePort(0); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ReservePort: %v, want ErrUnsupported", err)
	}
}
