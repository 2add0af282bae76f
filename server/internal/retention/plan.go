// Package retention decides which snapshots a policy keeps. It does no I/O.
//
// Calendar-based like btrbk's, in UTC. Hours, days, weeks (Monday to Sunday),
// months and years are counted back from the one "now" is in: 0 is the
// current one, so "7d" means today and the 7 days before.
//   - preserve_min all | latest | no | N{h,d,w,m,y}: keep every snapshot of
//     the last N units; "latest" and "no" keep none beyond the rules below.
//   - preserve no | [Nh] [Nd] [Nw] [Nm] [Ny], N a count or "*" (forever): keep
//     the first (oldest) snapshot of each hour/day/week/month/year that is at
//     most N units back.
//   - The newest snapshot that is not dated in the future is always kept.
//   - Snapshots dated in the future are kept and take part in nothing else, so
//     a wrong clock cannot push the others out.
//   - After a failed run nothing is deleted, so a source that stopped working
//     cannot eat the history.
//   - Names that are not snapshot names are left alone.
package retention

import (
	"fmt"
	"slices"
	"time"

	"pullsnap.dev/server/internal/snapshot"
)

// Rule is why a snapshot is kept.
type Rule int

const (
	// Deleted: no rule keeps it.
	Deleted Rule = iota
	// Foreign: not a snapshot name.
	Foreign
	// Failed: the last run failed, so nothing is deleted.
	Failed
	// Future: dated after now.
	Future
	// Newest: the newest that is not dated in the future.
	Newest
	// Preserved: the first of its bucket of Decision.Unit, within preserve.
	Preserved
	// KeepAll: preserve_min=all.
	KeepAll
	// WithinMinimum: within preserve_min's span, in Decision.Unit.
	WithinMinimum
)

// Decision is what becomes of one name, and why.
type Decision struct {
	Name string
	Rule Rule
	// Unit is set for Preserved and WithinMinimum.
	Unit Unit
	// Reason says it for a person, e.g. "first of its day (2026-11-19, 7 days
	// back; preserve 7d)".
	Reason string
}

// Keep reports whether the name stays.
func (d Decision) Keep() bool { return d.Rule != Deleted }

// String is the decision as retention-plan prints it:
// keep|delete <TAB> name <TAB> reason.
func (d Decision) String() string {
	action := "keep"
	if !d.Keep() {
		action = "delete"
	}
	return action + "\t" + d.Name + "\t" + d.Reason
}

// Snapshot is a snapshot's name and the time it stands for.
type Snapshot struct {
	Name string
	Time time.Time
}

// Split sorts names into snapshots, oldest first and each once, and the
// rest, as given.
func Split(names []string) (snapshots []Snapshot, foreign []string) {
	for _, name := range names {
		if t, ok := snapshot.Parse(name); ok {
			snapshots = append(snapshots, Snapshot{name, t})
		} else {
			foreign = append(foreign, name)
		}
	}
	// Names sort as their times do.
	slices.SortFunc(snapshots, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })
	snapshots = slices.CompactFunc(snapshots, func(a, b Snapshot) bool { return a.Name == b.Name })
	return snapshots, foreign
}

// LeftAlone is the decision for a name that is not a snapshot's.
func LeftAlone(name string) Decision {
	return Decision{Name: name, Rule: Foreign, Reason: "not a snapshot name; left alone"}
}

// Plan decides every name: first those that are not snapshot names, as
// given; then each snapshot once, oldest first. failed says the last run
// failed.
func Plan(names []string, now time.Time, p Policy, failed bool) []Decision {
	snapshots, foreign := Split(names)
	plan := make([]Decision, 0, len(foreign)+len(snapshots))
	for _, name := range foreign {
		plan = append(plan, LeftAlone(name))
	}
	return append(plan, Decide(snapshots, now, p, failed)...)
}

// Decide decides snapshots as Split returns them: sorted, each once. now is a
// time that has a snapshot name, between snapshot.First and snapshot.Last.
func Decide(snapshots []Snapshot, now time.Time, p Policy, failed bool) []Decision {
	// Sorted, the ones dated in the future come last.
	past := len(snapshots)
	for past > 0 && snapshots[past-1].Time.After(now) {
		past--
	}
	var nowBucket [len(Units)]int64
	for _, u := range Units {
		nowBucket[u] = bucket(now, u)
	}
	plan := make([]Decision, 0, len(snapshots))
	for i, s := range snapshots {
		d := Decision{Name: s.Name}
		switch {
		case failed:
			d.Rule, d.Reason = Failed, "the last run failed: nothing is deleted until a run succeeds"
		case i >= past:
			d.Rule, d.Reason = Future, fmt.Sprintf("dated %s in the future (clock skew?)", age(s.Time.Unix()-now.Unix()))
		case i == past-1:
			d.Rule, d.Reason = Newest, "newest snapshot"
		default:
			d = keepByPolicy(s, snapshots[:past], i, nowBucket, p)
		}
		if !d.Keep() {
			d.Reason = age(now.Unix()-s.Time.Unix()) + " old, kept by no rule"
		}
		plan = append(plan, d)
	}
	return plan
}

// keepByPolicy decides past[i], which is neither the newest nor dated in the
// future, by preserve (the coarsest unit that keeps it) and then preserve_min.
func keepByPolicy(s Snapshot, past []Snapshot, i int, nowBucket [len(Units)]int64, p Policy) Decision {
	var back [len(Units)]int64
	for _, u := range Units {
		back[u] = nowBucket[u] - bucket(s.Time, u)
	}
	for _, u := range slices.Backward(Units[:]) {
		reach, ok := p.Preserve[u]
		// past is sorted, so the first of a bucket is one whose predecessor
		// is in an earlier bucket.
		first := i == 0 || bucket(past[i-1].Time, u) != bucket(s.Time, u)
		if ok && first && reach.covers(back[u]) {
			return Decision{Name: s.Name, Rule: Preserved, Unit: u, Reason: fmt.Sprintf(
				"first of its %s (%s, %d %ss back; preserve %s%s)", u, label(s.Time, u), back[u], u, reach, u.Letter())}
		}
	}
	switch m := p.Minimum; m.Kind {
	case MinimumAll:
		return Decision{Name: s.Name, Rule: KeepAll, Reason: "preserve_min=all"}
	case MinimumSpan:
		if back[m.Unit] <= int64(m.N) {
			return Decision{Name: s.Name, Rule: WithinMinimum, Unit: m.Unit, Reason: fmt.Sprintf(
				"%d %ss back, within preserve_min=%s", back[m.Unit], m.Unit, m)}
		}
	}
	return Decision{Name: s.Name, Rule: Deleted}
}
