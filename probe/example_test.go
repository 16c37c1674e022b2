package probe_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/portkit/portkit/probe"
)

// Wait until a port answers, as `portkit wait` does: here a listener that
// opens a moment after the wait begins.
func ExampleWait() {
	// A port that is free now, opened 100 ms later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := ln.Addr().String()
	ln.Close()
	opened := make(chan net.Listener, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		ln, _ := net.Listen("tcp", addr)
		opened <- ln
	}()
	defer func() {
		if ln := <-opened; ln != nil {
			ln.Close()
		}
	}()

	t, err := probe.ParseTarget(addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	results, err := probe.Wait(context.Background(), []probe.Target{t}, probe.WaitOptions{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(results[0].Status)
	// Output: open
}

// Check a target once: open, closed, filtered or unresolvable.
func ExampleCheck() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	t, _ := probe.ParseTarget(ln.Addr().String())
	fmt.Println(probe.Check(context.Background(), t, probe.CheckOptions{}).Status)
	ln.Close()
	fmt.Println(probe.Check(context.Background(), t, probe.CheckOptions{}).Status)
	// Output:
	// open
	// closed
}
