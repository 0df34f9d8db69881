package promotion

import "time"

// NextToStart returns the promotion that should start in an environment whose
// non-terminal promotions are ps: the oldest queued one (lowest Seq), and only
// when none holds the environment.
func NextToStart(ps []Promotion) (Promotion, bool) {
	var next Promotion
	found := false
	for _, p := range ps {
		if p.State.HoldsEnvironment() {
			return Promotion{}, false
		}
		if p.State == Queued && (!found || p.Seq < next.Seq) {
			next, found = p, true
		}
	}
	return next, found
}

// Supersedes reports whether queuing next makes the queued promotion prev
// obsolete: both are forward promotions into the same environment, prev is
// still queued, and next's release is no older than prev's. Rollbacks are
// never superseded and never supersede.
func Supersedes(next, prev Promotion, nextReleaseCreated, prevReleaseCreated time.Time) bool {
	return next.ID != prev.ID &&
		prev.State == Queued &&
		next.Kind == KindPromote && prev.Kind == KindPromote &&
		next.Pipeline == prev.Pipeline && next.Environment == prev.Environment &&
		!nextReleaseCreated.Before(prevReleaseCreated)
}
