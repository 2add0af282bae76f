package retention

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Policy is what a job keeps.
type Policy struct {
	// Minimum keeps every snapshot of the last few units (preserve_min).
	Minimum Minimum
	// Preserve keeps the first snapshot of each bucket of a unit that is at
	// most Reach units back (preserve); a unit without an entry keeps none.
	Preserve map[Unit]Reach
}

// MinimumKind is the kind of a preserve_min.
type MinimumKind int

const (
	// MinimumNo keeps nothing beyond the other rules ("no").
	MinimumNo MinimumKind = iota
	// MinimumLatest is MinimumNo under another name ("latest"): the newest
	// snapshot is always kept anyway.
	MinimumLatest
	// MinimumAll keeps every snapshot ("all").
	MinimumAll
	// MinimumSpan keeps every snapshot at most N units back ("2d").
	MinimumSpan
)

// Minimum is a parsed preserve_min.
type Minimum struct {
	Kind MinimumKind
	// N and Unit are set for MinimumSpan only.
	N    int
	Unit Unit
}

func (m Minimum) String() string {
	switch m.Kind {
	case MinimumLatest:
		return "latest"
	case MinimumAll:
		return "all"
	case MinimumSpan:
		return strconv.Itoa(m.N) + m.Unit.Letter()
	}
	return "no"
}

// Reach is how many units back a preserve rule keeps the first of each
// bucket: N, or forever ("*").
type Reach struct {
	Forever bool
	N       int
}

func (r Reach) String() string {
	if r.Forever {
		return "*"
	}
	return strconv.Itoa(r.N)
}

// covers reports whether a bucket that many units back is within reach.
func (r Reach) covers(back int64) bool { return r.Forever || back <= int64(r.N) }

// FormatPreserve writes preserve in the syntax ParsePreserve reads.
func FormatPreserve(preserve map[Unit]Reach) string {
	var parts []string
	for _, u := range Units {
		if r, ok := preserve[u]; ok {
			parts = append(parts, r.String()+u.Letter())
		}
	}
	if len(parts) == 0 {
		return "no"
	}
	return strings.Join(parts, " ")
}

// Counts have at most six digits, so that no arithmetic on them overflows.
var (
	minimumSyntax = regexp.MustCompile(`^([0-9]{1,6})([hdwmy])$`)
	reachSyntax   = regexp.MustCompile(`^([0-9]{1,6}|\*)([hdwmy])$`)
)

// ErrSyntax is the error of every parser here; the messages wrapping it say
// what was wrong.
var ErrSyntax = errors.New("invalid retention policy")

// ParseMinimum reads a preserve_min: all, latest, no, or a count with a unit
// h d w m y (2d).
func ParseMinimum(s string) (Minimum, error) {
	switch s {
	case "no":
		return Minimum{Kind: MinimumNo}, nil
	case "latest":
		return Minimum{Kind: MinimumLatest}, nil
	case "all":
		return Minimum{Kind: MinimumAll}, nil
	}
	m := minimumSyntax.FindStringSubmatch(s)
	if m == nil {
		return Minimum{}, fmt.Errorf("%w: preserve_min %q: expected all, latest, no or a count with a unit h d w m y", ErrSyntax, s)
	}
	n, _ := strconv.Atoi(m[1]) // six digits at most: cannot fail
	return Minimum{Kind: MinimumSpan, N: n, Unit: unitOf[m[2][0]]}, nil
}

// ParsePreserve reads a preserve: "no", or at most one each of Nh Nd Nw Nm Ny
// with N a count or "*", separated by spaces or tabs ("24h 7d 4w 12m *y").
//
// COMPAT(bash): only the first line counts, as the Bash runner reads the value
// with `read`; "24h\n7d" is 24h alone. Drop this with the Bash runner.
func ParsePreserve(s string) (map[Unit]Reach, error) {
	preserve := map[Unit]Reach{}
	if s == "no" {
		return preserve, nil
	}
	line, _, _ := strings.Cut(s, "\n")
	// Only Bash's IFS: strings.Fields would also split on \r, \v, \f and
	// Unicode spaces, which the Bash runner keeps inside a token.
	tokens := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: preserve %q: expected no, or rules such as 24h 7d", ErrSyntax, s)
	}
	for _, token := range tokens {
		m := reachSyntax.FindStringSubmatch(token)
		if m == nil {
			return nil, fmt.Errorf("%w: preserve %q: %q is not a count (or *) with a unit h d w m y", ErrSyntax, s, token)
		}
		u := unitOf[m[2][0]]
		if _, twice := preserve[u]; twice {
			return nil, fmt.Errorf("%w: preserve %q: %s given twice", ErrSyntax, s, u.Letter())
		}
		if m[1] == "*" {
			preserve[u] = Reach{Forever: true}
		} else {
			n, _ := strconv.Atoi(m[1])
			preserve[u] = Reach{N: n}
		}
	}
	return preserve, nil
}
