package cli

// The man pages under docs/man are made from the command tree.
//go:generate go run ../mangen -out ../../docs/man
