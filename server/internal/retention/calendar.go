package retention

import (
	"fmt"
	"time"
)

// Unit is a calendar unit, in UTC.
type Unit int

// The units, finest first.
const (
	Hour Unit = iota
	Day
	Week // Monday to Sunday
	Month
	Year
)

// Units lists every unit, finest first.
var Units = [...]Unit{Hour, Day, Week, Month, Year}

var (
	unitNames   = [...]string{"hour", "day", "week", "month", "year"}
	unitLetters = [...]string{"h", "d", "w", "m", "y"}
	unitOf      = map[byte]Unit{'h': Hour, 'd': Day, 'w': Week, 'm': Month, 'y': Year}
)

func (u Unit) String() string { return unitNames[u] }

// Letter is the unit in a policy: h d w m y.
func (u Unit) Letter() string { return unitLetters[u] }

const (
	secondsPerDay = 24 * 60 * 60
	// 1970-01-01 was a Thursday: three days after the Monday that starts its week.
	epochWeekday = 3
)

// bucket numbers the hour, day, week, month or year t falls in, so that
// consecutive buckets have consecutive numbers.
func bucket(t time.Time, u Unit) int64 {
	switch u {
	case Hour:
		return floorDiv(t.Unix(), 60*60)
	case Day:
		return floorDiv(t.Unix(), secondsPerDay)
	case Week:
		return floorDiv(floorDiv(t.Unix(), secondsPerDay)+epochWeekday, 7)
	case Month:
		return int64(t.Year())*12 + int64(t.Month()) - 1
	}
	return int64(t.Year())
}

// label names the bucket t falls in, as the reasons print it.
func label(t time.Time, u Unit) string {
	switch u {
	case Hour:
		return t.Format("2006-01-02T15")
	case Day:
		return t.Format("2006-01-02")
	case Week:
		monday := bucket(t, Week)*7 - epochWeekday
		return "week of " + time.Unix(monday*secondsPerDay, 0).UTC().Format("2006-01-02")
	case Month:
		return t.Format("2006-01")
	}
	return t.Format("2006")
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// age writes a number of seconds as "3d4h", "5h12m", "2m5s" or "42s". It
// takes seconds, not a time.Duration, which ends after 292 years.
func age(s int64) string {
	sign := ""
	if s < 0 {
		sign, s = "-", -s
	}
	switch {
	case s >= secondsPerDay:
		return fmt.Sprintf("%s%dd%dh", sign, s/secondsPerDay, s%secondsPerDay/3600)
	case s >= 3600:
		return fmt.Sprintf("%s%dh%dm", sign, s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%s%dm%ds", sign, s/60, s%60)
	}
	return fmt.Sprintf("%s%ds", sign, s)
}
