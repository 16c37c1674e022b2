package scan

import "sync"

// inflight is the attempts in flight of an engine that holds something for
// each until Done or Close ends it (the UDP engine's socket in socket
// mode, a dial of the connect engine where there is no epoll), with the
// goroutines that wait on them. The zero value is ready; init sizes it.
type inflight[A interface {
	comparable
	Close() error
}] struct {
	// wg counts the engine's goroutines, which close waits for.
	wg sync.WaitGroup

	mu sync.Mutex
	m  map[Probe]A
}

// init makes room for size attempts.
func (f *inflight[A]) init(size int) { f.m = make(map[Probe]A, size) }

// len is the number of attempts in flight.
func (f *inflight[A]) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// put records a as p's attempt in flight.
func (f *inflight[A]) put(p Probe, a A) {
	f.mu.Lock()
	if f.m == nil {
		f.init(0)
	}
	f.m[p] = a
	f.mu.Unlock()
}

// forget forgets p's attempt if it is still a, which its goroutine ends
// itself.
func (f *inflight[A]) forget(p Probe, a A) {
	f.mu.Lock()
	if f.m[p] == a {
		delete(f.m, p)
	}
	f.mu.Unlock()
}

// done ends p's attempt, if one is in flight: Engine.Done.
func (f *inflight[A]) done(p Probe) {
	f.mu.Lock()
	a, ok := f.m[p]
	delete(f.m, p)
	f.mu.Unlock()
	if ok {
		a.Close()
	}
}

// close ends every attempt in flight and waits for the goroutines:
// Engine.Close.
func (f *inflight[A]) close() {
	f.mu.Lock()
	for p, a := range f.m {
		a.Close()
		delete(f.m, p)
	}
	f.mu.Unlock()
	f.wg.Wait()
}
