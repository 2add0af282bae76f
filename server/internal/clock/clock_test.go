package clock

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	system := time.Date(2026, 11, 26, 8, 0, 0, 123, time.UTC)
	for _, tc := range []struct {
		override string
		want     int64
		syntax   bool  // Parse fails
		later    error // Time fails with this (nil: any error)
		fails    bool  // Time fails
	}{
		{override: "", want: system.Unix()},
		{override: "1764144000", want: 1764144000},
		{override: "0", want: 0},
		{override: "00", want: 0},
		{override: "2025-11-26T08:00:00Z", want: 1764144000},
		{override: "0100", want: 64}, // octal, as in Bash
		{override: "0777", want: 511},
		{override: "253402300799", want: 253402300799},
		{override: "253402300800", fails: true, later: ErrRange},
		{override: "99999999999999999999", fails: true, later: ErrRange},
		{override: "08", fails: true},
		{override: "-1", syntax: true},
		{override: "1e5", syntax: true},
		{override: " 5", syntax: true},
		{override: "2026-02-30T00:00:00Z", syntax: true},
		{override: "1969-12-31T23:59:59Z", syntax: true},
		{override: "now", syntax: true},
	} {
		r, err := Parse(tc.override, func() time.Time { return system })
		if tc.syntax {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %v; want ErrSyntax", tc.override, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q) = %v", tc.override, err)
			continue
		}
		got, err := r.Time()
		switch {
		case tc.fails && err == nil:
			t.Errorf("Parse(%q).Time() = %v; want an error", tc.override, got)
		case tc.fails && tc.later != nil && !errors.Is(err, tc.later):
			t.Errorf("Parse(%q).Time() = %v; want %v", tc.override, err, tc.later)
		case !tc.fails && (err != nil || got.Unix() != tc.want || got.Location() != time.UTC):
			t.Errorf("Parse(%q).Time() = %v, %v; want %d", tc.override, got, err, tc.want)
		}
	}
}
