// Command gen turns IANA's registry CSV into portkit's embedded table.
//
//	go run ./internal/gen -csv ../../shared/data/iana/service-names-port-numbers.csv -out iana.bin
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/portkit/portkit/registry/internal/ianacsv"
	"github.com/portkit/portkit/registry/internal/table"
)

func main() {
	in := flag.String("csv", "", "IANA service-names-port-numbers.csv to read")
	out := flag.String("out", "iana.bin", "table file to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		return fmt.Errorf("-csv is required")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := ianacsv.Read(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	data, err := table.Build(recs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: %d records from %s, %d bytes to %s\n", len(recs), in, len(data), out)
	return nil
}
