// Package snapshot knows what a snapshot's name means: the UTC second it was
// taken, as YYYY-MM-DDTHH:MM:SSZ, so that sorting names sorts them by time.
package snapshot

import (
	"regexp"
	"time"
)

// Layout is the name of a snapshot as a time layout.
const Layout = "2006-01-02T15:04:05Z"

// The first and the last second a snapshot can be named for: names have four
// digits of year, and none is dated before the epoch.
var (
	First = time.Unix(0, 0).UTC()
	Last  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// The shape alone. time.Parse would also take a fractional second
// ("...:00.5Z"), which is not a snapshot name.
var shape = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

// Parse returns the time a snapshot name stands for. It is false for anything
// else: another shape, a date before 1970, or a date or time that does not
// exist (2026-02-30, 24:00:00, a leap second :60).
func Parse(name string) (time.Time, bool) {
	if !shape.MatchString(name) {
		return time.Time{}, false
	}
	t, err := time.Parse(Layout, name)
	if err != nil || t.Before(First) {
		return time.Time{}, false
	}
	return t, true
}

// Name is the snapshot name for t, to the second, in UTC. Only times between
// First and Last have one that Parse reads back.
func Name(t time.Time) string { return t.UTC().Format(Layout) }
