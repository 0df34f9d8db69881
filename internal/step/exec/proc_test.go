package exec

import "testing"

func TestParseStat(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 98 0 0 0 0 0 0 0 20 0 1 0 123456 2445312 144 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.pgrp != 4240 || st.start != 123456 {
		t.Errorf("parseStat = %+v, want state S, pgrp 4240, start 123456", st)
	}
	for _, bad := range []string{"", "4242 no name S 1", "4242 (x) S 1 2", "4242 (x) S 1 x 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}
