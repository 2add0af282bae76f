package retention

import (
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"
)

func TestParseMinimum(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Minimum
		bad  bool
	}{
		{in: "no", want: Minimum{Kind: MinimumNo}},
		{in: "latest", want: Minimum{Kind: MinimumLatest}},
		{in: "all", want: Minimum{Kind: MinimumAll}},
		{in: "2d", want: Minimum{Kind: MinimumSpan, N: 2, Unit: Day}},
		{in: "0h", want: Minimum{Kind: MinimumSpan, N: 0, Unit: Hour}},
		{in: "007w", want: Minimum{Kind: MinimumSpan, N: 7, Unit: Week}},
		{in: "999999y", want: Minimum{Kind: MinimumSpan, N: 999999, Unit: Year}},
		{in: "12m", want: Minimum{Kind: MinimumSpan, N: 12, Unit: Month}},
		{in: "1000000y", bad: true},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "*d", bad: true},
		{in: "-1d", bad: true},
		{in: "2D", bad: true},
		{in: "2 d", bad: true},
		{in: " 2d", bad: true},
		{in: "2d\n", bad: true},
		{in: "1min", bad: true}, // max_age's unit, not retention's
		{in: "All", bad: true},
		{in: "none", bad: true},
		{in: "２d", bad: true},
	} {
		got, err := ParseMinimum(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("ParseMinimum(%q) = %v, %v; want ErrSyntax", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMinimum(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != strings.TrimLeft(tc.in, "0") && tc.in != "0h" {
			t.Errorf("ParseMinimum(%q).String() = %q", tc.in, got.String())
		}
	}
}

func TestParsePreserve(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[Unit]Reach // nil: invalid
	}{
		{"no", map[Unit]Reach{}},
		{"24h 7d 4w 12m *y", map[Unit]Reach{Hour: {N: 24}, Day: {N: 7}, Week: {N: 4}, Month: {N: 12}, Year: {Forever: true}}},
		{"*y 12m", map[Unit]Reach{Year: {Forever: true}, Month: {N: 12}}},
		{"0w", map[Unit]Reach{Week: {N: 0}}},
		{"007d", map[Unit]Reach{Day: {N: 7}}},
		{" \t7d  24h\t", map[Unit]Reach{Day: {N: 7}, Hour: {N: 24}}},
		{"999999h", map[Unit]Reach{Hour: {N: 999999}}},
		// COMPAT(bash): the first line alone.
		{"1d\n24h", map[Unit]Reach{Day: {N: 1}}},
		{"1d\n7d", map[Unit]Reach{Day: {N: 1}}},
		{"1d\nrubbish", map[Unit]Reach{Day: {N: 1}}},
		{"\n7d", nil},
		{"", nil},
		{" ", nil},
		{"24h 7x", nil},
		{"7d 7d", nil},
		{"7d *d", nil},
		{"d", nil},
		{"-1d", nil},
		{"1000000d", nil},
		{"**y", nil},
		{"no 7d", nil},
		{" no", nil},
		{"No", nil},
		{"7d,24h", nil},
		{"7d\r", nil},        // \r is no separator for the Bash runner
		{"7d\v24h", nil},     // nor \v
		{"7d\u00a024h", nil}, // nor a no-break space
		{"7d24h", nil},
	} {
		got, err := ParsePreserve(tc.in)
		if tc.want == nil {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("ParsePreserve(%q) = %v, %v; want ErrSyntax", tc.in, got, err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParsePreserve(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatPreserve(t *testing.T) {
	for in, want := range map[string]string{
		"no":               "no",
		"*y 12m 4w 7d 24h": "24h 7d 4w 12m *y",
		"007d":             "7d",
	} {
		p, err := ParsePreserve(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatPreserve(p); got != want {
			t.Errorf("FormatPreserve(ParsePreserve(%q)) = %q; want %q", in, got, want)
		}
	}
}

// What the Bash runner accepts, said once more in other words: the first line,
// split on spaces and tabs, is "no" alone or one to five rules, each unit once.
var bashToken = regexp.MustCompile(`^([0-9]{1,6}|\*)([hdwmy])$`)

func bashAccepts(s string) bool {
	if s == "no" {
		return true
	}
	line := strings.SplitN(s, "\n", 2)[0]
	tokens := regexp.MustCompile(`[ \t]+`).Split(strings.Trim(line, " \t"), -1)
	seen := map[string]bool{}
	for _, token := range tokens {
		m := bashToken.FindStringSubmatch(token)
		if m == nil || seen[m[2]] {
			return false
		}
		seen[m[2]] = true
	}
	return true
}

func FuzzParsePreserve(f *testing.F) {
	for _, s := range []string{"no", "24h 7d 4w 12m *y", "7d 7d", "", " \t*y\n1d", "24h 7x", "1000000d", "7d\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePreserve(s)
		if accepts := bashAccepts(s); (err == nil) != accepts {
			t.Fatalf("ParsePreserve(%q) = %v, %v; the Bash runner accepts it: %v", s, p, err, accepts)
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParsePreserve(%q): %v is not ErrSyntax", s, err)
			}
			return
		}
		again, err := ParsePreserve(FormatPreserve(p))
		if err != nil || !maps.Equal(again, p) {
			t.Fatalf("ParsePreserve(%q) = %v, but its format %q reads as %v, %v", s, p, FormatPreserve(p), again, err)
		}
	})
}

func FuzzParseMinimum(f *testing.F) {
	for _, s := range []string{"no", "latest", "all", "2d", "007w", "1000000y", "2d\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMinimum(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseMinimum(%q): %v is not ErrSyntax", s, err)
			}
			return
		}
		if again, err := ParseMinimum(m.String()); err != nil || again != m {
			t.Fatalf("ParseMinimum(%q) = %v, but %q reads as %v, %v", s, m, m.String(), again, err)
		}
	})
}
