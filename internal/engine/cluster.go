package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/view"
)

// errLeaseLost is the cause given to steps stopped because this replica
// could not renew its leases: another replica may take their promotions over.
var errLeaseLost = errors.New("lease lost: the store was unreachable")

// startLoops starts the goroutines that keep this replica's leases alive,
// take over promotions whose driver died, and receive other replicas' messages.
func (e *Engine) startLoops() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopLoops = cancel
	e.loops.Add(2)
	go func() {
		defer e.loops.Done()
		e.every(ctx, e.cfg.LeaseTTL/4, e.renew)
	}()
	go func() {
		defer e.loops.Done()
		e.every(ctx, e.cfg.SweepInterval, func(ctx context.Context) {
			if err := e.sweep(ctx, e.cfg.Now().UTC()); err != nil && ctx.Err() == nil {
				e.log.Warn("take over expired promotions", "err", err)
			}
		})
	}()
	if e.cfg.Listen != nil {
		e.loops.Add(1)
		go func() {
			defer e.loops.Done()
			if err := e.cfg.Listen(ctx, e.handleMessage); err != nil && ctx.Err() == nil {
				e.log.Error("listen for replica messages", "err", err)
			}
		}()
	}
}

// every calls fn every d until ctx ends.
func (e *Engine) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// renew records this replica as alive and extends the leases of the
// promotions it drives. When it has failed for half of the lease, the
// replica stops its running steps: by the time the lease expires and another
// replica takes over, nothing of them runs here.
func (e *Engine) renew(ctx context.Context) {
	now := e.cfg.Now().UTC()
	err := e.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutReplica(ctx, &store.Replica{ID: e.cfg.InstanceID, Host: hostOf(e.cfg.InstanceID),
			Addr: e.cfg.Addr, StartedAt: e.startedAt, SeenAt: now}); err != nil {
			return err
		}
		_, err := tx.RenewLeases(ctx, e.cfg.InstanceID, now.Add(e.cfg.LeaseTTL))
		return err
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		if e.fenced {
			e.log.Info("store reachable again: leases renewed")
		}
		e.lastRenew, e.fenced = now, false
		return
	}
	if ctx.Err() != nil {
		return
	}
	e.log.Warn("renew leases", "err", err, "since_last_renewal", now.Sub(e.lastRenew))
	if !e.fenced && now.Sub(e.lastRenew) > e.cfg.LeaseTTL/2 {
		e.fenced = true
		e.log.Error("leases about to expire: stopping running steps so that no step runs twice", "running", len(e.running))
		for _, r := range e.running {
			cancel := r.cancel
			cancel(errLeaseLost)
		}
	}
}

// sweep takes over the promotions with work in flight whose driver's lease
// ended before now, and stops step processes left by promotions that ended
// while their driver was gone.
func (e *Engine) sweep(ctx context.Context, now time.Time) error {
	if e.isStopping() {
		return nil
	}
	const batch = 20
	for {
		var claimed []promotion.Promotion
		err := e.store.Update(ctx, func(tx store.Tx) error {
			var err error
			claimed, err = tx.ClaimExpired(ctx, e.cfg.InstanceID, now, e.cfg.Now().UTC().Add(e.cfg.LeaseTTL), batch)
			return err
		})
		if err != nil {
			return fmt.Errorf("claim expired promotions: %w", err)
		}
		for _, p := range claimed {
			e.logFor(&p).Info("taking over promotion", "state", p.State, "previous_owner", p.Owner)
			if err := e.takeOver(ctx, p.ID); err != nil {
				return fmt.Errorf("take over %s: %w", p.ID, err)
			}
		}
		if len(claimed) < batch {
			break
		}
	}
	return e.reapEnded(ctx)
}

// reapEnded finishes step attempts still marked running whose promotion has
// ended (aborted while its driver was gone) and whose driver is gone.
func (e *Engine) reapEnded(ctx context.Context) error {
	var stale []promotion.StepRun
	err := e.store.View(ctx, func(tx store.Tx) error {
		runs, err := tx.RunningStepRuns(ctx)
		if err != nil || len(runs) == 0 {
			return err
		}
		live := map[string]bool{}
		if e.cfg.Shared {
			reps, err := tx.Replicas(ctx, e.cfg.Now().UTC().Add(-e.cfg.LeaseTTL))
			if err != nil {
				return err
			}
			for _, r := range reps {
				live[r.ID] = true
			}
		}
		for _, r := range runs {
			if r.Owner == e.cfg.InstanceID || live[r.Owner] {
				continue
			}
			p, err := tx.Promotion(ctx, r.PromotionID)
			if err != nil {
				return err
			}
			if p.State.Terminal() {
				stale = append(stale, r)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find stale step attempts: %w", err)
	}
	for _, r := range stale {
		if err := e.reap(ctx, r); err != nil {
			return err
		}
		if err := e.interruptOrphan(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// takeOver resumes a promotion this replica just claimed: attempts its
// previous driver left running are stopped (when their processes are on this
// host) and recorded as interrupted, then the promotion continues.
func (e *Engine) takeOver(ctx context.Context, id string) error {
	var running []promotion.StepRun
	err := e.store.View(ctx, func(tx store.Tx) error {
		runs, err := tx.StepRuns(ctx, id)
		for _, r := range runs {
			if r.State == promotion.StepRunning {
				running = append(running, r)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range running {
		if err := e.reap(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range running {
		if err := e.interruptOrphan(ctx, r); err != nil {
			return err
		}
	}
	var p *promotion.Promotion
	if err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.Promotion(ctx, id)
		return err
	}); err != nil {
		return err
	}
	switch {
	case p.State.Terminal():
		return nil
	case p.WakeAt != nil:
		e.arm(p.ID, *p.WakeAt)
		return nil
	case p.State == promotion.Deploying || p.State == promotion.Verifying || p.State == promotion.RollingBack:
		return e.resumeStep(ctx, p.ID)
	}
	return nil
}

// reap stops what is left of a step attempt's processes, when they ran on
// this host. Processes on another host were stopped by their own replica
// before its lease expired.
func (e *Engine) reap(ctx context.Context, r promotion.StepRun) error {
	if r.PID == 0 || e.cfg.Reaper == nil || hostOf(r.Owner) != hostOf(e.cfg.InstanceID) {
		return nil
	}
	e.logID(r.PromotionID).Info("stopping orphaned step process", "step", r.Name, "attempt", r.Attempt, "pid", r.PID)
	if err := e.cfg.Reaper(ctx, r.PID, r.PIDStart, e.cfg.ReapGrace); err != nil {
		return fmt.Errorf("stop orphaned step %s of %s (pid %d): %w", r.Name, r.PromotionID, r.PID, err)
	}
	return nil
}

// handleMessage acts on a message from another replica (or this one).
func (e *Engine) handleMessage(msg string) {
	switch {
	case strings.HasPrefix(msg, msgStop):
		id, c := parseStopMessage(strings.TrimPrefix(msg, msgStop))
		e.stopStep(id, c)
	case strings.HasPrefix(msg, msgChanged):
		ids := map[string]bool{}
		for _, id := range strings.Split(strings.TrimPrefix(msg, msgChanged), ",") {
			ids[id] = true
		}
		e.notify(ids)
	}
}

// hostOf returns the host part of an instance ID ("host:pid").
func hostOf(instance string) string {
	if i := strings.LastIndex(instance, ":"); i >= 0 {
		return instance[:i]
	}
	return instance
}

// defaultInstanceID names this process.
func defaultInstanceID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// Ready reports whether the engine can work: its store answers and it holds its leases.
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.store.Ping(ctx); err != nil {
		return fmt.Errorf("store unreachable: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fenced {
		return errors.New("leases lapsed while the store was unreachable; renewing")
	}
	return nil
}

// Cluster lists the live replicas sharing the store and what each drives.
func (e *Engine) Cluster(ctx context.Context) ([]view.Replica, error) {
	now := e.cfg.Now().UTC()
	var out []view.Replica
	err := e.store.View(ctx, func(tx store.Tx) error {
		reps, err := tx.Replicas(ctx, now.Add(-2*e.cfg.LeaseTTL))
		if err != nil {
			return fmt.Errorf("list replicas: %w", err)
		}
		active, err := tx.Promotions(ctx, store.PromotionFilter{Active: true, Ascending: true})
		if err != nil {
			return fmt.Errorf("list promotions: %w", err)
		}
		byOwner := map[string][]view.PromotionRef{}
		for i := range active {
			p := &active[i]
			if p.Owner != "" && p.LeaseUntil.After(now) && p.State.HoldsEnvironment() {
				ref := promotionRef(p)
				ref.Pipeline, ref.Environment = p.Pipeline, p.Environment
				byOwner[p.Owner] = append(byOwner[p.Owner], ref)
			}
		}
		for _, r := range reps {
			d := byOwner[r.ID]
			if d == nil {
				d = []view.PromotionRef{}
			}
			out = append(out, view.Replica{ID: r.ID, Host: r.Host, Addr: r.Addr, StartedAt: r.StartedAt, SeenAt: r.SeenAt,
				Self: r.ID == e.cfg.InstanceID, Driving: d})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}
