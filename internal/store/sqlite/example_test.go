package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/sqlite"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A change and its audit event commit together, or not at all.
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, &audit.Event{
			Time:    time.Now(),
			Actor:   "alice",
			Action:  "pipeline.apply",
			Subject: "pipeline/shop",
		})
	})
	if err != nil {
		log.Fatal(err)
	}

	err = s.View(ctx, func(tx store.Tx) error {
		events, err := tx.AuditEvents(ctx, store.AuditFilter{Actor: "alice"})
		if err != nil {
			return err
		}
		for _, e := range events {
			fmt.Println(e.Seq, e.Action, e.Subject)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: 1 pipeline.apply pipeline/shop
}
