//go:build !linux

package scan

import (
	"errors"
	"fmt"
	"runtime"
)

func newSYN(SYNOptions) (Engine, error) {
	return nil, fmt.Errorf("SYN scan is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
