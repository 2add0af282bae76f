package retention

import (
	"flag"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"pullsnap.dev/server/internal/snapshot"
)

// The reference model, written from the policy's definition (the package
// comment), not from Decide: buckets come from time's calendar.
func modelKeeps(names []string, now time.Time, p Policy, failed bool) map[string]bool {
	keep := map[string]bool{}
	var past []string
	for _, name := range names {
		t, ok := snapshot.Parse(name)
		switch {
		case !ok || failed || t.After(now):
			keep[name] = true
		default:
			past = append(past, name)
		}
	}
	slices.Sort(past)
	past = slices.Compact(past)
	if len(past) > 0 {
		keep[past[len(past)-1]] = true
	}
	for _, u := range Units {
		reach, ok := p.Preserve[u]
		if !ok {
			continue
		}
		seen := map[time.Time]bool{}
		for _, name := range past {
			t, _ := snapshot.Parse(name)
			if b := modelBucket(t, u); !seen[b] {
				seen[b] = true
				if reach.Forever || modelBack(now, t, u) <= int64(reach.N) {
					keep[name] = true
				}
			}
		}
	}
	for _, name := range past {
		t, _ := snapshot.Parse(name)
		m := p.Minimum
		if m.Kind == MinimumAll || m.Kind == MinimumSpan && modelBack(now, t, m.Unit) <= int64(m.N) {
			keep[name] = true
		}
	}
	return keep
}

// modelBucket is the start of the hour, day, week (its Monday), month or year.
func modelBucket(t time.Time, u Unit) time.Time {
	y, m, d := t.Date()
	switch u {
	case Hour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, time.UTC)
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case Week:
		return time.Date(y, m, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
}

// modelBack is how many units t's bucket is before now's. It counts in
// seconds, not time.Duration, which ends after 292 years.
func modelBack(now, t time.Time, u Unit) int64 {
	a, b := modelBucket(now, u), modelBucket(t, u)
	switch u {
	case Hour:
		return (a.Unix() - b.Unix()) / 3600
	case Day:
		return (a.Unix() - b.Unix()) / 86400
	case Week:
		return (a.Unix() - b.Unix()) / (7 * 86400)
	case Month:
		return int64(a.Year()*12+int(a.Month())) - int64(b.Year()*12+int(b.Month()))
	}
	return int64(a.Year() - b.Year())
}

type history struct {
	now    time.Time
	names  []string
	policy Policy
	failed bool
}

var (
	last   = snapshot.Last.Unix()
	scales = []int64{1, 600, 3600, 86400, 7 * 86400, 31 * 86400, 365 * 86400}
)

func drawPolicy(t *rapid.T) Policy {
	reach := func(label string) Reach {
		if rapid.IntRange(0, 6).Draw(t, label+"-forever") == 0 {
			return Reach{Forever: true}
		}
		return Reach{N: rapid.IntRange(0, 30).Draw(t, label)}
	}
	p := Policy{Preserve: map[Unit]Reach{}}
	for _, u := range Units {
		if rapid.Bool().Draw(t, "preserve-"+u.Letter()) {
			p.Preserve[u] = reach("reach-" + u.Letter())
		}
	}
	switch kind := MinimumKind(rapid.IntRange(0, 5).Draw(t, "minimum")); kind {
	case MinimumNo, MinimumLatest, MinimumAll:
		p.Minimum = Minimum{Kind: kind}
	default:
		p.Minimum = Minimum{Kind: MinimumSpan, N: rapid.IntRange(0, 10).Draw(t, "minimum-n"), Unit: rapid.SampledFrom(Units[:]).Draw(t, "minimum-unit")}
	}
	return p
}

func drawHistory(t *rapid.T) history {
	// Mostly recent clocks, sometimes either end of the calendar.
	var now int64
	switch rapid.IntRange(0, 9).Draw(t, "era") {
	case 0:
		now = rapid.Int64Range(0, 30*86400).Draw(t, "now")
	case 1:
		now = rapid.Int64Range(last-400*86400, last).Draw(t, "now")
	default:
		now = rapid.Int64Range(1640995200, 1893456000).Draw(t, "now") // 2022 to 2030
	}
	n := rapid.IntRange(0, 60).Draw(t, "count")
	var names []string
	for i := range n {
		scale := rapid.SampledFrom(scales).Draw(t, "scale")
		at := now - rapid.Int64Range(0, 40*scale).Draw(t, "back")
		if rapid.IntRange(0, 19).Draw(t, "skew") == 0 {
			at = now + rapid.Int64Range(1, 100*3600).Draw(t, "ahead")
		}
		names = append(names, snapshot.Name(time.Unix(min(max(at, 0), last), 0)))
		if i > 0 && rapid.IntRange(0, 9).Draw(t, "again") == 0 {
			names = append(names, names[rapid.IntRange(0, i-1).Draw(t, "which")])
		}
		if rapid.IntRange(0, 29).Draw(t, "foreign") == 0 {
			names = append(names, rapid.SampledFrom([]string{"notes", "2026-02-30T00:00:00Z", names[i] + ".partial", " "}).Draw(t, "stray"))
		}
	}
	return history{
		now:    time.Unix(now, 0).UTC(),
		names:  names,
		policy: drawPolicy(t),
		failed: rapid.IntRange(0, 9).Draw(t, "failed") == 0,
	}
}

func kept(plan []Decision) map[string]bool {
	keep := map[string]bool{}
	for _, d := range plan {
		if d.Keep() {
			keep[d.Name] = true
		}
	}
	return keep
}

func deleted(plan []Decision) []string {
	var names []string
	for _, d := range plan {
		if !d.Keep() {
			names = append(names, d.Name)
		}
	}
	return names
}

func TestPlanMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		plan := Plan(h.names, h.now, h.policy, h.failed)
		if got, want := kept(plan), modelKeeps(h.names, h.now, h.policy, h.failed); !maps.Equal(got, want) {
			t.Fatalf("kept %v\nmodel keeps %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	})
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		plan := Plan(h.names, h.now, h.policy, h.failed)
		snapshots, foreign := Split(h.names)

		// Every name is decided: the foreign ones as given, then each
		// snapshot once, oldest first, each with a reason.
		if len(plan) != len(foreign)+len(snapshots) {
			t.Fatalf("%d decisions for %d foreign names and %d snapshots", len(plan), len(foreign), len(snapshots))
		}
		for i, d := range plan {
			if d.Reason == "" {
				t.Fatalf("%s: no reason", d.Name)
			}
			if i < len(foreign) && (d.Name != foreign[i] || d.Rule != Foreign) {
				t.Fatalf("decision %d is %v; want %q left alone", i, d, foreign[i])
			}
			if i >= len(foreign) && d.Name != snapshots[i-len(foreign)].Name {
				t.Fatalf("decision %d is for %q; want %q", i, d.Name, snapshots[i-len(foreign)].Name)
			}
		}
		for i := len(foreign) + 1; i < len(plan); i++ {
			if plan[i-1].Name >= plan[i].Name {
				t.Fatalf("%q before %q: not each once, oldest first", plan[i-1].Name, plan[i].Name)
			}
		}

		// The newest past snapshot, the future ones, and all of them after a
		// failed run or with preserve_min=all, are kept.
		var past, future []string
		for _, s := range snapshots {
			if s.Time.After(h.now) {
				future = append(future, s.Name)
			} else {
				past = append(past, s.Name)
			}
		}
		keep := kept(plan)
		if len(past) > 0 && !keep[past[len(past)-1]] {
			t.Fatalf("the newest, %s, goes", past[len(past)-1])
		}
		for _, name := range future {
			if !keep[name] {
				t.Fatalf("%s, dated in the future, goes", name)
			}
		}
		if (h.failed || h.policy.Minimum.Kind == MinimumAll) && len(deleted(plan)) > 0 {
			t.Fatalf("failed=%v, preserve_min=%v, but %v go", h.failed, h.policy.Minimum, deleted(plan))
		}

		// The future ones push nothing out: without them, the same go.
		if again := deleted(Plan(past, h.now, h.policy, h.failed)); !slices.Equal(again, deleted(plan)) {
			t.Fatalf("without the future ones %v go; with them %v", again, deleted(plan))
		}

		// Pruning is idempotent: planning again for what is kept deletes nothing.
		if again := deleted(Plan(slices.Collect(maps.Keys(keep)), h.now, h.policy, h.failed)); len(again) > 0 {
			t.Fatalf("a second prune deletes %v", again)
		}
	})
}

// A policy that reaches further never deletes what a lesser one keeps.
func TestPlanMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		wider := Policy{Minimum: h.policy.Minimum, Preserve: maps.Clone(h.policy.Preserve)}
		u := rapid.SampledFrom(Units[:]).Draw(t, "widen")
		switch r, ok := wider.Preserve[u]; {
		case !ok:
			wider.Preserve[u] = Reach{N: rapid.IntRange(0, 30).Draw(t, "new-reach")}
		case !r.Forever:
			wider.Preserve[u] = Reach{N: r.N + rapid.IntRange(1, 30).Draw(t, "more")}
		}
		if m := wider.Minimum; m.Kind == MinimumSpan {
			wider.Minimum.N += rapid.IntRange(0, 3).Draw(t, "more-minimum")
		}
		before := kept(Plan(h.names, h.now, h.policy, h.failed))
		after := kept(Plan(h.names, h.now, wider, h.failed))
		for name := range before {
			if !after[name] {
				t.Fatalf("%s is kept by %v but not by %v", name, h.policy, wider)
			}
		}
	})
}

// Retention's corner cases (a Sunday, a year's first hour) are rare in random
// histories, and a check costs microseconds: run more than rapid's 100, unless
// -rapid.checks says otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		_ = f.Value.Set("2000")
	}
	os.Exit(m.Run())
}
