package scan

// slab is a slice of T whose elements are reused through a free list, so
// that per-probe state costs no allocation per probe and is named by a
// small, stable index.
type slab[T any] struct {
	items []T
	free  []int32
}

// alloc returns the index of an unused element, which keeps what it held
// when it was released (a generation count survives reuse).
func (s *slab[T]) alloc() int32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	var zero T
	s.items = append(s.items, zero)
	return int32(len(s.items) - 1)
}

// release makes element i unused.
func (s *slab[T]) release(i int32) { s.free = append(s.free, i) }
