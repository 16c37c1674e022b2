//go:build !linux

package scan

import (
	"errors"
	"fmt"
	"runtime"
)

func newRawUDP(UDPOptions) (Engine, error) {
	return nil, fmt.Errorf("raw UDP scan is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
