// Package clock reads the time pullsnap acts at: the system's, or an override
// (PULLSNAP_NOW, retention-plan's --now) given as epoch seconds or as a
// snapshot name, which is how the tests travel in time.
package clock

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"pullsnap.dev/server/internal/snapshot"
)

// ErrSyntax is an override that is neither epoch seconds nor a snapshot name.
var ErrSyntax = errors.New("expected epoch seconds or YYYY-MM-DDTHH:MM:SSZ")

// ErrRange is a reading after the last second a snapshot can be named for.
var ErrRange = errors.New("after " + snapshot.Name(snapshot.Last))

// Reading is what the clock said. Parse accepts some overrides that the
// calendar cannot use; Time says so, where the Bash runner failed: only once a
// snapshot is to be dated against it.
type Reading struct {
	t   time.Time
	err error
}

// Parse reads an override; "" reads the system clock with now.
//
// COMPAT(bash): epoch seconds written with a leading 0 are octal, as they are
// in Bash arithmetic ("0100" is 64). Drop this with the Bash runner.
func Parse(override string, now func() time.Time) (Reading, error) {
	if override == "" {
		return Reading{t: now().UTC().Truncate(time.Second)}, nil
	}
	if t, ok := snapshot.Parse(override); ok {
		return Reading{t: t}, nil
	}
	if !digits(override) {
		return Reading{}, ErrSyntax
	}
	base := 10
	if len(override) > 1 && override[0] == '0' {
		base = 8
	}
	n, err := strconv.ParseInt(override, base, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return Reading{err: ErrRange}, nil
	case err != nil: // 8 or 9 in an octal number
		return Reading{err: fmt.Errorf("%s: invalid octal number", override)}, nil
	case n > snapshot.Last.Unix():
		return Reading{err: ErrRange}, nil
	}
	return Reading{t: time.Unix(n, 0).UTC()}, nil
}

// Time is the reading as a time between snapshot.First and snapshot.Last.
func (r Reading) Time() (time.Time, error) { return r.t, r.err }

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
