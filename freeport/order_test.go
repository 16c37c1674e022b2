package freeport

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/portkit/portkit/hostports"
)

func TestDefaultSpans(t *testing.T) {
	tests := []struct {
		name   string
		policy hostports.Policy
		err    error
		want   []Range
	}{
		{"linux default", hostports.Policy{EphemeralLow: 32768, EphemeralHigh: 60999}, nil, []Range{{1024, 32767}, {61000, 65535}}},
		{"unreadable", hostports.Policy{}, hostports.ErrUnsupported, []Range{{1024, 49151}}},
		{"ephemeral to the top", hostports.Policy{EphemeralLow: 10000, EphemeralHigh: 65535}, nil, []Range{{1024, 9999}}},
		{"ephemeral below 1024", hostports.Policy{EphemeralLow: 500, EphemeralHigh: 2000}, nil, []Range{{2001, 65535}}},
		{"ephemeral everywhere", hostports.Policy{EphemeralLow: 1024, EphemeralHigh: 65535}, nil, []Range{{1024, 65535}}},
		{"inverted policy", hostports.Policy{EphemeralLow: 60000, EphemeralHigh: 50000}, nil, []Range{{1024, 49151}}},
	}
	for _, tt := range tests {
		if got := defaultSpans(tt.policy, tt.err); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOrderNear(t *testing.T) {
	tests := []struct {
		name  string
		cands []uint16
		near  uint16
		want  []uint16
	}{
		{"inside, tie goes low", []uint16{10, 11, 12, 13, 14}, 12, []uint16{12, 11, 13, 10, 14}},
		{"gap at near", []uint16{10, 11, 13, 20}, 12, []uint16{11, 13, 10, 20}},
		{"below the range", []uint16{10, 11, 12}, 1, []uint16{10, 11, 12}},
		{"above the range", []uint16{10, 11, 12}, 65535, []uint16{12, 11, 10}},
		{"top port", []uint16{65534, 65535}, 65535, []uint16{65535, 65534}},
		{"empty", nil, 5, nil},
	}
	for _, tt := range tests {
		if got := slices.Collect(order(tt.cands, tt.near, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOrderRandomIsPermutation(t *testing.T) {
	cands := candidates([]Range{{100, 199}, {150, 300}})
	if len(cands) != 201 || cands[0] != 100 || cands[200] != 300 {
		t.Fatalf("candidates: %d ports, %v…%v", len(cands), cands[0], cands[len(cands)-1])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	got := slices.Collect(order(slices.Clone(cands), 0, rng))
	if slices.Equal(got, cands) {
		t.Error("random order came out sorted")
	}
	slices.Sort(got)
	if !slices.Equal(got, cands) {
		t.Error("random order is not a permutation of the candidates")
	}
}

func TestCheckInput(t *testing.T) {
	tests := []struct {
		r   Range
		n   int
		bad bool
	}{
		{Range{1, 1}, 1, false},
		{Range{1, 65535}, 3, false},
		{Range{0, 10}, 1, true},
		{Range{10, 5}, 1, true},
		{Range{10, 20}, 0, true},
		{Range{10, 20}, -1, true},
	}
	for _, tt := range tests {
		err := checkInput(tt.r, tt.n)
		var ie *InputError
		if (err != nil) != tt.bad || tt.bad && (!errors.As(err, &ie) || !ie.BadInput()) {
			t.Errorf("checkInput(%v, %d) = %v, want bad input %v", tt.r, tt.n, err, tt.bad)
		}
	}
}
