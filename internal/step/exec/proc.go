package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pollInterval is the longest wait between two checks for a process group
// that should be gone. The first checks come sooner, so that a group that
// dies at once is noticed within milliseconds.
const pollInterval = 50 * time.Millisecond

// StartTime returns the kernel start time of process pid, in clock ticks
// since boot (field 22 of /proc/PID/stat). A PID and its start time name
// one process for the lifetime of the machine, where a PID alone can be reused.
func StartTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.start, nil
}

// Alive reports whether the process group of a step is still running: pgid
// and start are what Request.Started received. It is true when the group's
// leader, the process with PID pgid and kernel start time start, is running,
// or when any other process of group pgid is. Zombies (exited processes that
// their parent has not waited for) do not count: they run nothing.
//
// PID reuse: Linux does not hand out a number that is still the ID of a
// process group, so while any process of the old group lives, no new process
// can have PID pgid. Hence when a process with PID pgid exists with another
// start time, the old group has ended, and any group pgid that exists now
// belongs to that unrelated process: Alive returns false without looking at
// the group, and Reap leaves it alone. A start of 0 means unknown; Alive then
// cannot tell a reused PID from the leader.
func Alive(pgid int, start uint64) bool {
	if pgid <= 1 {
		return false
	}
	if st, err := readStat(pgid); err == nil {
		if start != 0 && st.start != start {
			return false
		}
		if !st.dead() {
			return true
		}
	}
	return groupLive(pgid)
}

// Reap makes sure the process group of a step that was running when Ferry
// stopped is gone, before the step runs again. If Alive(pgid, start), Reap
// sends SIGTERM to the group (and to the leader, should it have left its
// group), waits up to grace for every process of the group to exit, then
// sends SIGKILL and waits until none is left. A grace of zero or less sends
// SIGKILL right after SIGTERM. Reap checks every 50 milliseconds at most; it
// returns nil once the group is gone or was gone already, and ctx's error if
// ctx ends first. It refuses pgid 0 and 1 and Ferry's own process group.
//
// A tiny race remains, as with any use of PIDs without pidfds: should the
// last process of the group exit and its number be reused for a new process
// group between a check and a signal, that signal reaches the new group.
// Linux allocates PIDs cyclically, which makes this practically impossible
// within the milliseconds Reap takes.
func Reap(ctx context.Context, pgid int, start uint64, grace time.Duration) error {
	if pgid <= 1 {
		return fmt.Errorf("reap process group %d: not a group a step runs in", pgid)
	}
	if pgid == syscall.Getpgrp() {
		return fmt.Errorf("reap process group %d: it is Ferry's own group", pgid)
	}
	alive := func() bool { return Alive(pgid, start) }
	if !alive() {
		return nil
	}
	signalGroup(pgid, start, syscall.SIGTERM)
	if grace > 0 {
		gone, err := waitUntil(ctx, time.Now().Add(grace), func() bool { return !alive() })
		if gone || err != nil {
			return wrapReap(pgid, err)
		}
	}
	signalGroup(pgid, start, syscall.SIGKILL)
	_, err := waitUntil(ctx, time.Time{}, func() bool { return !alive() })
	return wrapReap(pgid, err)
}

func wrapReap(pgid int, err error) error {
	if err != nil {
		return fmt.Errorf("reap process group %d: %w", pgid, err)
	}
	return nil
}

// signalGroup sends sig to group pgid, and to its leader if the leader is
// still the process started at start but has moved to another group.
func signalGroup(pgid int, start uint64, sig syscall.Signal) {
	_ = syscall.Kill(-pgid, sig) // ESRCH: the group is gone
	if st, err := readStat(pgid); err == nil && start != 0 && st.start == start && st.pgrp != pgid && !st.dead() {
		_ = syscall.Kill(pgid, sig)
	}
}

// waitUntil calls done until it returns true, with growing pauses up to
// pollInterval. It returns false when deadline (unless zero) passes first,
// and ctx's error when ctx ends first.
func waitUntil(ctx context.Context, deadline time.Time, done func() bool) (bool, error) {
	pause := 5 * time.Millisecond
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		if done() {
			return true, nil
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, pollInterval)
		if !deadline.IsZero() {
			pause = max(min(pause, time.Until(deadline)), time.Millisecond)
		}
		t.Reset(pause)
	}
}

// groupLive reports whether a process of group pgid other than a zombie
// exists. kill(-pgid, 0) answers "none" cheaply; when it finds the group,
// /proc tells whether its processes are only zombies, which a parent that
// does not wait (such as an init that does not reap orphans) leaves behind.
func groupLive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: assume the worst
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && !st.dead() {
			return true
		}
	}
	return false
}

// stat is what Ferry reads from /proc/PID/stat.
type stat struct {
	state byte   // field 3: R, S, D, Z, ...
	pgrp  int    // field 5
	start uint64 // field 22, clock ticks since boot
}

// dead reports whether the process has exited and waits only to be reaped.
func (s stat) dead() bool { return s.state == 'Z' || s.state == 'X' || s.state == 'x' }

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return stat{}, fmt.Errorf("process group: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("start time: %w", err)
	}
	return stat{state: f[0][0], pgrp: pgrp, start: start}, nil
}
