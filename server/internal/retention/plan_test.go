package retention

import (
	"strings"
	"testing"
	"time"

	"pullsnap.dev/server/internal/snapshot"
)

func mustTime(t *testing.T, name string) time.Time {
	t.Helper()
	tm, ok := snapshot.Parse(name)
	if !ok {
		t.Fatalf("%q is not a snapshot name", name)
	}
	return tm
}

func mustPolicy(t *testing.T, minimum, preserve string) Policy {
	t.Helper()
	m, err := ParseMinimum(minimum)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePreserve(preserve)
	if err != nil {
		t.Fatal(err)
	}
	return Policy{Minimum: m, Preserve: p}
}

// The plans, line for line, as the Bash runner prints them.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name              string
		now               string
		minimum, preserve string
		failed            bool
		names             []string
		want              string
	}{{
		name: "the defaults over a long history", now: "2026-11-26T08:00:00Z", minimum: "2d", preserve: "24h 7d 4w 12m *y",
		names: []string{
			"2026-11-26T09:00:00Z", "2019-07-01T00:00:00Z", "2019-08-01T00:00:00Z", "2025-01-15T00:00:00Z",
			"2025-11-03T10:00:00Z", "2025-11-20T10:00:00Z", "2026-01-05T00:00:00Z", "2026-10-01T00:00:00Z",
			"2026-10-26T09:00:00Z", "2026-10-27T09:00:00Z", "2026-11-19T06:00:00Z", "2026-11-19T07:00:00Z",
			"2026-11-24T01:00:00Z", "2026-11-24T01:30:00Z", "2026-11-25T09:00:00Z", "2026-11-25T09:59:00Z",
			"2026-11-26T07:59:59Z", "2019-07-01T00:00:00Z",
		},
		want: `
keep	2019-07-01T00:00:00Z	first of its year (2019, 7 years back; preserve *y)
delete	2019-08-01T00:00:00Z	2674d8h old, kept by no rule
keep	2025-01-15T00:00:00Z	first of its year (2025, 1 years back; preserve *y)
keep	2025-11-03T10:00:00Z	first of its month (2025-11, 12 months back; preserve 12m)
delete	2025-11-20T10:00:00Z	370d22h old, kept by no rule
keep	2026-01-05T00:00:00Z	first of its year (2026, 0 years back; preserve *y)
keep	2026-10-01T00:00:00Z	first of its month (2026-10, 1 months back; preserve 12m)
keep	2026-10-26T09:00:00Z	first of its week (week of 2026-10-26, 4 weeks back; preserve 4w)
delete	2026-10-27T09:00:00Z	29d23h old, kept by no rule
keep	2026-11-19T06:00:00Z	first of its month (2026-11, 0 months back; preserve 12m)
delete	2026-11-19T07:00:00Z	7d1h old, kept by no rule
keep	2026-11-24T01:00:00Z	first of its week (week of 2026-11-23, 0 weeks back; preserve 4w)
keep	2026-11-24T01:30:00Z	2 days back, within preserve_min=2d
keep	2026-11-25T09:00:00Z	first of its day (2026-11-25, 1 days back; preserve 7d)
keep	2026-11-25T09:59:00Z	1 days back, within preserve_min=2d
keep	2026-11-26T07:59:59Z	newest snapshot
keep	2026-11-26T09:00:00Z	dated 1h0m in the future (clock skew?)`,
	}, {
		name: "weeks that began before the epoch", now: "1970-01-05T01:01:01Z", minimum: "1h", preserve: "1w 0h",
		names: []string{"1970-01-01T00:00:00Z", "1970-01-03T05:00:00Z", "1970-01-04T23:00:00Z", "1970-01-05T00:00:00Z", "1970-01-05T00:00:30Z"},
		want: `
keep	1970-01-01T00:00:00Z	first of its week (week of 1969-12-29, 1 weeks back; preserve 1w)
delete	1970-01-03T05:00:00Z	1d20h old, kept by no rule
delete	1970-01-04T23:00:00Z	2h1m old, kept by no rule
keep	1970-01-05T00:00:00Z	first of its week (week of 1970-01-05, 0 weeks back; preserve 1w)
keep	1970-01-05T00:00:30Z	newest snapshot`,
	}, {
		name: "names that are not snapshots first, as given", now: "2026-11-26T08:00:00Z", minimum: "no", preserve: "no",
		names: []string{"notes", "2026-11-26T07:00:00Z", "2026-02-30T00:00:00Z", "notes", "2026-11-26T07:00:00Z.partial", "2026-11-20T00:00:00Z"},
		want: `
keep	notes	not a snapshot name; left alone
keep	2026-02-30T00:00:00Z	not a snapshot name; left alone
keep	notes	not a snapshot name; left alone
keep	2026-11-26T07:00:00Z.partial	not a snapshot name; left alone
delete	2026-11-20T00:00:00Z	6d8h old, kept by no rule
keep	2026-11-26T07:00:00Z	newest snapshot`,
	}, {
		name: "after a failed run, all stay", now: "2026-11-26T08:00:00Z", minimum: "no", preserve: "no", failed: true,
		names: []string{"2001-01-01T00:00:00Z", "2030-01-01T00:00:00Z", "x"},
		want: `
keep	x	not a snapshot name; left alone
keep	2001-01-01T00:00:00Z	the last run failed: nothing is deleted until a run succeeds
keep	2030-01-01T00:00:00Z	the last run failed: nothing is deleted until a run succeeds`,
	}, {
		name: "the newest past one, though a newer one is in the future", now: "2026-11-26T08:00:00Z", minimum: "latest", preserve: "no",
		names: []string{"2026-11-20T00:00:00Z", "2026-11-25T00:00:00Z", "2030-01-01T00:00:00Z", "2026-11-26T08:00:01Z"},
		want: `
delete	2026-11-20T00:00:00Z	6d8h old, kept by no rule
keep	2026-11-25T00:00:00Z	newest snapshot
keep	2026-11-26T08:00:01Z	dated 1s in the future (clock skew?)
keep	2030-01-01T00:00:00Z	dated 1131d16h in the future (clock skew?)`,
	}, {
		name: "only future ones", now: "2026-11-26T08:00:00Z", minimum: "no", preserve: "no",
		names: []string{"2026-11-26T08:01:05Z"},
		want: `
keep	2026-11-26T08:01:05Z	dated 1m5s in the future (clock skew?)`,
	}, {
		name: "a snapshot dated now is not in the future", now: "2026-11-26T08:00:00Z", minimum: "no", preserve: "no",
		names: []string{"2026-11-26T08:00:00Z", "2026-11-26T07:00:00Z"},
		want: `
delete	2026-11-26T07:00:00Z	1h0m old, kept by no rule
keep	2026-11-26T08:00:00Z	newest snapshot`,
	}, {
		name: "preserve_min=all", now: "2026-11-26T08:00:00Z", minimum: "all", preserve: "0y",
		names: []string{"2020-01-01T00:00:00Z", "2025-06-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-11-26T07:00:00Z"},
		want: `
keep	2020-01-01T00:00:00Z	preserve_min=all
keep	2025-06-01T00:00:00Z	preserve_min=all
keep	2026-03-01T00:00:00Z	first of its year (2026, 0 years back; preserve 0y)
keep	2026-11-26T07:00:00Z	newest snapshot`,
	}, {
		// Sunday 2026-11-22 is in last week; Monday 2026-11-23 starts this one.
		name: "weeks from Monday, months by the calendar", now: "2026-11-26T08:00:00Z", minimum: "0m", preserve: "0w",
		names: []string{"2026-10-31T23:59:59Z", "2026-11-22T23:00:00Z", "2026-11-23T00:00:00Z", "2026-11-23T01:00:00Z", "2026-11-26T07:00:00Z"},
		want: `
delete	2026-10-31T23:59:59Z	25d8h old, kept by no rule
keep	2026-11-22T23:00:00Z	0 months back, within preserve_min=0m
keep	2026-11-23T00:00:00Z	first of its week (week of 2026-11-23, 0 weeks back; preserve 0w)
keep	2026-11-23T01:00:00Z	0 months back, within preserve_min=0m
keep	2026-11-26T07:00:00Z	newest snapshot`,
	}, {
		name: "the first of a bucket out of reach lends its bucket to no one", now: "2026-11-26T08:00:00Z", minimum: "no", preserve: "1d",
		names: []string{"2026-11-24T00:00:00Z", "2026-11-24T01:00:00Z", "2026-11-25T00:00:00Z", "2026-11-25T01:00:00Z", "2026-11-26T07:00:00Z"},
		want: `
delete	2026-11-24T00:00:00Z	2d8h old, kept by no rule
delete	2026-11-24T01:00:00Z	2d7h old, kept by no rule
keep	2026-11-25T00:00:00Z	first of its day (2026-11-25, 1 days back; preserve 1d)
delete	2026-11-25T01:00:00Z	1d7h old, kept by no rule
keep	2026-11-26T07:00:00Z	newest snapshot`,
	}, {
		name: "the last second that has a name", now: "9999-12-31T23:59:59Z", minimum: "no", preserve: "1y 1h",
		names: []string{"1970-01-01T00:00:00Z", "9998-12-31T23:59:59Z", "9999-12-31T22:00:00Z", "9999-12-31T23:59:58Z"},
		want: `
delete	1970-01-01T00:00:00Z	2932896d23h old, kept by no rule
keep	9998-12-31T23:59:59Z	first of its year (9998, 1 years back; preserve 1y)
keep	9999-12-31T22:00:00Z	first of its year (9999, 0 years back; preserve 1y)
keep	9999-12-31T23:59:58Z	newest snapshot`,
	}, {
		name: "nothing to decide", now: "2026-11-26T08:00:00Z", minimum: "2d", preserve: "no",
		want: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			for _, d := range Plan(tc.names, mustTime(t, tc.now), mustPolicy(t, tc.minimum, tc.preserve), tc.failed) {
				lines = append(lines, d.String())
			}
			if got, want := strings.Join(lines, "\n"), strings.TrimPrefix(tc.want, "\n"); got != want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	for s, want := range map[int64]string{
		0: "0s", 59: "59s", 60: "1m0s", 3599: "59m59s", 3600: "1h0m", 86399: "23h59m", 86400: "1d0h",
		90061: "1d1h", -42: "-42s", -3700: "-1h1m", 253402300799: "2932896d23h",
	} {
		if got := age(s); got != want {
			t.Errorf("age(%d) = %q; want %q", s, got, want)
		}
	}
}

func TestLabel(t *testing.T) {
	for _, tc := range []struct {
		at   string
		unit Unit
		want string
	}{
		{"2026-11-26T08:30:00Z", Hour, "2026-11-26T08"},
		{"2026-11-26T08:30:00Z", Day, "2026-11-26"},
		{"2026-11-26T08:30:00Z", Week, "week of 2026-11-23"},
		{"2026-11-23T00:00:00Z", Week, "week of 2026-11-23"},
		{"2026-11-22T23:59:59Z", Week, "week of 2026-11-16"},
		{"1970-01-04T23:59:59Z", Week, "week of 1969-12-29"},
		{"2027-01-01T00:00:00Z", Week, "week of 2026-12-28"},
		{"2026-11-26T08:30:00Z", Month, "2026-11"},
		{"0999-01-01T00:00:00Z", Year, "0999"}, // not a snapshot name, but a time
	} {
		at, err := time.Parse(snapshot.Layout, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if got := label(at, tc.unit); got != tc.want {
			t.Errorf("label(%s, %s) = %q; want %q", tc.at, tc.unit, got, tc.want)
		}
	}
}
