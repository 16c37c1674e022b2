package registry

//go:generate go run ./internal/gen -csv ../../shared/data/iana/service-names-port-numbers.csv -out iana.bin
