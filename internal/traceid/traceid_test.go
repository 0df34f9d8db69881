package traceid_test

import (
	"encoding/hex"
	"testing"

	"github.com/ferry-dev/ferry/internal/traceid"
)

// TestFromPromotion checks the derivation against vectors computed outside Go:
//
//	printf 'ferry/promotion/ID' | sha256sum | cut -c1-32
func TestFromPromotion(t *testing.T) {
	for id, want := range map[string]string{
		"0b6c0a8e-3c1f-4a47-9d51-6d0e8a1d2c3b": "2071bdcf32ce0c61eac2e46c7b55c65b",
		"":                                     "2c9f762bee3c4e9449fe80261cec2ee4",
	} {
		if got := traceid.Hex(id); got != want {
			t.Errorf("Hex(%q) = %s, want %s", id, got, want)
		}
		raw := traceid.FromPromotion(id)
		if got := hex.EncodeToString(raw[:]); got != want {
			t.Errorf("FromPromotion(%q) = %s, want %s", id, got, want)
		}
	}
}

func TestDistinctPromotionsGetDistinctTraces(t *testing.T) {
	seen := map[[16]byte]string{}
	for _, id := range []string{"a", "b", "ab", "ferry/promotion/a", "A"} {
		tr := traceid.FromPromotion(id)
		if tr == ([16]byte{}) {
			t.Errorf("FromPromotion(%q) is all zeros", id)
		}
		if other, dup := seen[tr]; dup {
			t.Errorf("%q and %q share trace ID %x", id, other, tr)
		}
		seen[tr] = id
	}
}
