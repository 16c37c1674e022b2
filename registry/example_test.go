package registry_test

import (
	"fmt"

	"github.com/portkit/portkit/registry"
)

// What is on port 5432? ByPort answers from the embedded IANA table.
func ExampleByPort() {
	for _, s := range registry.ByPort(5432, registry.TCP) {
		fmt.Println(s.Port, s.Proto, s.Name, "-", s.Description)
	}
	// Output: 5432 tcp postgresql - PostgreSQL Database
}

// Which port does a service use? Aliases are rows of their own.
func ExampleByName() {
	for _, s := range registry.ByName("ldaps", registry.TCP) {
		fmt.Println(s.Name, s.Port, s.Proto)
	}
	// Output: ldaps 636 tcp
}

// A query as a user types it: a port, port/proto, a name or a URL.
func ExampleRegistry_Lookup() {
	r := registry.New()
	for _, in := range []string{"53/udp", "https://example.com:8443/x", "postgres://db/app"} {
		q, err := registry.ParseQuery(in)
		if err != nil {
			fmt.Println(err)
			continue
		}
		a, err := r.Lookup(q)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: port %d, %s\n", in, a.Port, a.Services[0].Name)
	}
	// Output:
	// 53/udp: port 53, domain
	// https://example.com:8443/x: port 8443, https
	// postgres://db/app: port 5432, postgresql
}

// A name the registry does not know comes back with suggestions.
func ExampleRegistry_Suggest() {
	fmt.Println(registry.New().Suggest("postgersql", 1))
	// Output: [postgresql]
}
