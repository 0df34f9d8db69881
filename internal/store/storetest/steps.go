package storetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
)

// insertPromotions stores bare promotions with the given IDs.
func insertPromotions(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.InsertPromotion(ctx, newBarePromotion(id, "shop", "env-"+id, "rel-1")); err != nil {
				return err
			}
		}
		return nil
	})
}

func stepKey(s promotion.StepRun) string {
	return fmt.Sprintf("%s/%s/%d/%d", s.PromotionID, s.Phase, s.Index, s.Attempt)
}

func testStepRuns(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1", "p2")
	var (
		s1 = newStepRun("p1", promotion.PhaseDeploy, 0, 1, at(0))
		s2 = newStepRun("p1", promotion.PhaseDeploy, 0, 2, at(time.Minute))
		s3 = newStepRun("p1", promotion.PhaseVerify, 0, 1, at(2*time.Minute))
		s4 = newStepRun("p2", promotion.PhaseDeploy, 0, 1, at(30*time.Second))
		s5 = newStepRun("p1", promotion.PhaseDeploy, 1, 1, at(90*time.Second))
	)
	s3.State = promotion.StepSucceeded
	s3.ExitCode = ptr(0) // a zero exit code is not a missing one
	s3.FinishedAt = ptr(at(3 * time.Minute))
	s3.PID, s3.PIDStart, s3.Owner = 0, 0, ""
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		// Inserted out of start order.
		for _, r := range []*promotion.StepRun{s2, s4, s1, s5, s3} {
			if err := tx.InsertStepRun(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.StepRuns(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "step runs of p1 in start order", got, []promotion.StepRun{
			wantStepRun(*s1), wantStepRun(*s2), wantStepRun(*s5), wantStepRun(*s3),
		})
		none, err := tx.StepRuns(ctx, "p9")
		if err != nil {
			return err
		}
		if len(none) != 0 {
			t.Errorf("step runs of an unknown promotion: %s", dump(none))
		}
		return nil
	})

	s1.State = promotion.StepFailed
	s1.ExitCode = ptr(3)
	s1.Error = "exit status 3"
	s1.FinishedAt = ptr(at(50 * time.Second))
	s1.PID, s1.PIDStart = 0, 0
	s1.Name = "renamed"
	s2.State = promotion.StepInterrupted
	s2.IdempotencyKey = "other-key"
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpdateStepRun(ctx, s1); err != nil {
			return err
		}
		return tx.UpdateStepRun(ctx, s2)
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.StepRuns(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "updated step runs of p1", got, []promotion.StepRun{
			wantStepRun(*s1), wantStepRun(*s2), wantStepRun(*s5), wantStepRun(*s3),
		})
		running, err := tx.RunningStepRuns(ctx)
		if err != nil {
			return err
		}
		sort.Slice(running, func(i, j int) bool { return stepKey(running[i]) < stepKey(running[j]) })
		equal(t, "running step runs", running, []promotion.StepRun{wantStepRun(*s5), wantStepRun(*s4)})
		return nil
	})
}

func testStepRunErrors(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1")
	r := newStepRun("p1", promotion.PhaseDeploy, 0, 1, at(0))
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertStepRun(ctx, r) })
	updateFails(t, s, "the same attempt twice", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertStepRun(ctx, newStepRun("p1", promotion.PhaseDeploy, 0, 1, at(time.Second)))
	})
	for _, missing := range []*promotion.StepRun{
		newStepRun("p1", promotion.PhaseDeploy, 0, 2, at(0)),
		newStepRun("p1", promotion.PhaseDeploy, 1, 1, at(0)),
		newStepRun("p1", promotion.PhaseVerify, 0, 1, at(0)),
		newStepRun("p2", promotion.PhaseDeploy, 0, 1, at(0)),
	} {
		updateFails(t, s, "update of a missing attempt "+stepKey(*missing), store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateStepRun(ctx, missing)
		})
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.StepRuns(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "step runs after refused writes", got, []promotion.StepRun{wantStepRun(*r)})
		return nil
	})
}

func testStepLogs(t *testing.T, s store.Store) {
	insertPromotions(t, s, "p1", "p2")
	chunks := []*store.LogChunk{
		{PromotionID: "p1", Phase: promotion.PhaseDeploy, Index: 0, Attempt: 1, Data: []byte("starting\n"), At: at(0)},
		{PromotionID: "p2", Phase: promotion.PhaseDeploy, Index: 0, Attempt: 1, Data: []byte("other\n"), At: at(0)},
		{PromotionID: "p1", Phase: promotion.PhaseDeploy, Index: 0, Attempt: 1, Data: []byte{0, 1, 2, 0xff, '\n'}, At: at(time.Second)},
		{PromotionID: "p1", Phase: promotion.PhaseVerify, Index: 2, Attempt: 3, Data: []byte("done\n"), At: at(time.Millisecond)},
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range chunks[:2] {
			if err := tx.AppendStepLog(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range chunks[2:] {
			if err := tx.AppendStepLog(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	for i := 1; i < len(chunks); i++ {
		if chunks[i].Seq <= chunks[i-1].Seq {
			t.Errorf("log chunk seq %d after %d: want increasing", chunks[i].Seq, chunks[i-1].Seq)
		}
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.StepLogs(ctx, "p1")
		if err != nil {
			return err
		}
		equal(t, "log of p1", got, []store.LogChunk{
			wantLogChunk(*chunks[0]), wantLogChunk(*chunks[2]), wantLogChunk(*chunks[3]),
		})
		none, err := tx.StepLogs(ctx, "p9")
		if err != nil {
			return err
		}
		if len(none) != 0 {
			t.Errorf("log of an unknown promotion: %s", dump(none))
		}
		return nil
	})
}
