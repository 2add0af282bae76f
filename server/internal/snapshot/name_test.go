package snapshot

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		want time.Time // zero: not a snapshot name
	}{
		{"2026-11-26T07:59:59Z", time.Date(2026, 11, 26, 7, 59, 59, 0, time.UTC)},
		{"1970-01-01T00:00:00Z", First},
		{"9999-12-31T23:59:59Z", Last},
		{"2024-02-29T12:00:00Z", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"2000-02-29T00:00:00Z", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2026-02-29T00:00:00Z", time.Time{}}, // not a leap year
		{"2100-02-29T00:00:00Z", time.Time{}}, // nor is 2100
		{"2026-04-31T00:00:00Z", time.Time{}},
		{"2026-02-30T00:00:00Z", time.Time{}},
		{"2026-13-01T00:00:00Z", time.Time{}},
		{"2026-00-01T00:00:00Z", time.Time{}},
		{"2026-01-00T00:00:00Z", time.Time{}},
		{"2026-01-01T24:00:00Z", time.Time{}},
		{"2026-01-01T00:60:00Z", time.Time{}},
		{"2026-01-01T00:00:60Z", time.Time{}}, // no leap seconds
		{"1969-12-31T23:59:59Z", time.Time{}}, // before the epoch
		{"0000-01-01T00:00:00Z", time.Time{}},
		{"2026-01-01T00:00:00.5Z", time.Time{}}, // time.Parse alone would take it
		{"2026-01-01T00:00:00", time.Time{}},
		{"2026-01-01T00:00:00+00:00", time.Time{}},
		{"2026-01-01 00:00:00Z", time.Time{}},
		{"2026-1-01T00:00:00Z", time.Time{}},
		{"+2026-01-01T00:00:00Z", time.Time{}},
		{"2026-01-01T00:00:00Z\n", time.Time{}},
		{"2026-01-01T00:00:00Z.partial", time.Time{}},
		{"２026-01-01T00:00:00Z", time.Time{}}, // a full-width digit
		{"", time.Time{}},
	} {
		got, ok := Parse(tc.name)
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}

func TestNameRoundTrip(t *testing.T) {
	for _, unix := range []int64{0, 1, 86399, 951782400, 1764144000, Last.Unix()} {
		name := Name(time.Unix(unix, 0))
		got, ok := Parse(name)
		if !ok || got.Unix() != unix {
			t.Errorf("Parse(Name(%d)) = Parse(%q) = %v, %v", unix, name, got, ok)
		}
	}
}

// A name is read back as itself: every time has one name, and every name one time.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"2026-11-26T07:59:59Z", "2026-02-30T00:00:00Z", "1969-12-31T23:59:59Z", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Parse(s)
		if !ok {
			return
		}
		if Name(got) != s {
			t.Fatalf("Parse(%q) = %v, named %q", s, got, Name(got))
		}
		if got.Before(First) || got.After(Last) {
			t.Fatalf("Parse(%q) = %v, outside [%v, %v]", s, got, First, Last)
		}
	})
}
