//go:build !unix

package cli

import "errors"

func dropTo(string) error { return errors.New("dropping privileges needs unix") }
