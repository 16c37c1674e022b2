package freeport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/portkit/portkit/freeport"
)

// A test server on a port nothing else can take: the listener is bound
// before its port is known, so there is no window in which another process
// could bind it.
func ExampleListenTCP() {
	ln, err := freeport.ListenTCP(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// Port numbers free now on every local address (racy: prefer ListenTCP
// when the port is for this process).
func ExampleFind() {
	ports, err := freeport.Find(context.Background(), 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(ports), "ports")
	// Output: 3 ports
}
