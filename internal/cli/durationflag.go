package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// durationValue is the value of every duration flag: Go's form (1m30s,
// 500ms) or a bare number, which means seconds as in timeout(1) and
// wait-for-it (`wait -t 15`). A negative duration is refused: no flag has a
// use for one.
type durationValue time.Duration

// durationVarP defines a duration flag that reads a bare number as seconds.
func durationVarP(fs *pflag.FlagSet, p *time.Duration, name, shorthand string, value time.Duration, usage string) {
	*p = value
	fs.VarP((*durationValue)(p), name, shorthand, usage)
}

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

// String is the value as --help prints a default: a zero is "0", which
// pflag leaves out as it does for its own durations, since several flags
// say in their usage what no value means (forward's --idle-timeout: 10m
// for TCP) and "(default 0s)" after it would contradict them.
func (d *durationValue) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}

// Type names the value in --help: "--timeout duration".
func (d *durationValue) Type() string { return "duration" }

// errDuration says what a duration flag takes.
var errDuration = errors.New("not a duration: give seconds (15, 0.5) or a number with a unit (500ms, 30s, 2m, 1h)")

// parseDuration reads a duration flag's value.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
			return 0, errDuration
		}
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, errDuration
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return d, nil
}
