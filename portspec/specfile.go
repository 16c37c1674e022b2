package portspec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// maxSpecLine bounds a line of a target or ports file.
const maxSpecLine = 1 << 20

// readSpecFile calls each with every word of r and its line number: words
// are separated by white space, and by commas too when commas is set; "#"
// starts a comment to the end of the line; a UTF-8 byte order mark is
// skipped. An *Error from each gets the file and line.
func readSpecFile(r io.Reader, name string, commas bool, each func(word string, line int) *Error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxSpecLine)
	isSep := unicode.IsSpace
	if commas {
		isSep = func(c rune) bool { return c == ',' || unicode.IsSpace(c) }
	}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		text, _, _ = strings.Cut(text, "#")
		for _, word := range strings.FieldsFunc(text, isSep) {
			if err := each(word, line); err != nil {
				err.File, err.Line = name, line
				return err
			}
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return &Error{File: name, Line: line + 1, what: "line", Reason: fmt.Sprintf("longer than %d bytes", maxSpecLine)}
	} else if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// ReadTargetFile reads a file of target specs, as nmap's -iL does: specs
// separated by white space, one or several to a line, "#" comments. Each is
// checked as ParseTargets would check it, without resolving, and a bad one
// is an *Error naming name and the line. The specs go to ParseTargets, or to
// TargetOptions.Exclude for an exclude file.
func ReadTargetFile(r io.Reader, name string) ([]string, error) {
	var specs []string
	err := readSpecFile(r, name, false, func(word string, _ int) *Error {
		if _, err := parseTargetSpec(word); err != nil {
			return err
		}
		specs = append(specs, word)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return specs, nil
}
