package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/store"
)

func testRevisions(t *testing.T, s store.Store) {
	viewFails(t, s, "latest revision of an unknown pipeline", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Revision(ctx, "shop", 0)
		return err
	})

	r1 := newRevision("shop", "sha256:one", at(0))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		created, err := tx.PutRevision(ctx, r1)
		if err != nil {
			return err
		}
		if !created || r1.Number != 1 {
			t.Errorf("first revision: created %v, number %d; want true, 1", created, r1.Number)
		}
		return nil
	})

	// The same digest again returns the stored revision, whatever else differs.
	again := newRevision("shop", "sha256:one", at(time.Hour))
	again.Source = "other source"
	again.CreatedBy = "bob"
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		created, err := tx.PutRevision(ctx, again)
		if err != nil {
			return err
		}
		if created {
			t.Errorf("same digest: created a new revision %d", again.Number)
		}
		return nil
	})
	equal(t, "revision returned for an equal digest", *again, wantRevision(*r1))

	// A new digest makes revision 2; going back to the first spec makes
	// revision 3, since only the latest revision is compared.
	r2 := newRevision("shop", "sha256:two", at(time.Minute))
	r2.Spec = newSpec("shop", "dev", "staging", "prod")
	r3 := newRevision("shop", "sha256:one", at(2*time.Minute))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, r := range []*pipeline.Revision{r2, r3} {
			created, err := tx.PutRevision(ctx, r)
			if err != nil {
				return err
			}
			if want := i + 2; !created || r.Number != want {
				t.Errorf("revision %s: created %v, number %d; want true, %d", r.Digest, created, r.Number, want)
			}
		}
		return nil
	})

	// A revision stored without a time gets one.
	other := newRevision("api", "sha256:api", time.Time{})
	before := time.Now()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutRevision(ctx, other)
		return err
	})
	if other.Number != 1 {
		t.Errorf("first revision of another pipeline: number %d, want 1", other.Number)
	}
	if other.CreatedAt.Before(before.Add(-time.Minute)) || other.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("revision stored without a time: CreatedAt %v, want about now", other.CreatedAt)
	}

	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range []*pipeline.Revision{r1, r2, r3} {
			got, err := tx.Revision(ctx, "shop", want.Number)
			if err != nil {
				return err
			}
			equal(t, "stored revision", *got, wantRevision(*want))
		}
		latest, err := tx.Revision(ctx, "shop", 0)
		if err != nil {
			return err
		}
		equal(t, "latest revision", *latest, wantRevision(*r3))
		got, err := tx.Revision(ctx, "api", 0)
		if err != nil {
			return err
		}
		if !got.CreatedAt.Equal(other.CreatedAt) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("revision stored without a time: stored %v, returned %v", got.CreatedAt, other.CreatedAt)
		}
		return nil
	})
	viewFails(t, s, "revision past the latest", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Revision(ctx, "shop", 4)
		return err
	})
}

func testPipelines(t *testing.T, s store.Store) {
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Pipelines(ctx)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("pipelines of an empty store: %s", dump(got))
		}
		return nil
	})
	var (
		web1  = newRevision("web", "sha256:w1", at(0))
		shop1 = newRevision("shop", "sha256:s1", at(time.Second))
		shop2 = newRevision("shop", "sha256:s2", at(2*time.Second))
		api1  = newRevision("api", "sha256:a1", at(3*time.Second))
		web2  = newRevision("web", "sha256:w2", at(4*time.Second))
	)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range []*pipeline.Revision{web1, shop1, shop2, api1, web2} {
			if _, err := tx.PutRevision(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Pipelines(ctx)
		if err != nil {
			return err
		}
		equal(t, "pipelines", got, []pipeline.Revision{wantRevision(*api1), wantRevision(*shop2), wantRevision(*web2)})
		return nil
	})
}

func testReleases(t *testing.T, s store.Store) {
	r1 := newRelease("rel-1", "shop", "1.0.0", at(0))
	r2 := newRelease("rel-2", "shop", "1.1.0", at(time.Hour))
	r2.Labels = nil
	r2.Commit, r2.Source, r2.BuildURL, r2.CreatedBy = "", "", "", ""
	r2.CommitTime = nil
	r2.Artifacts = r2.Artifacts[:1]
	other := newRelease("rel-3", "web", "1.0.0", at(0)) // same version, another pipeline
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range []*release.Release{r1, r2, other} {
			if err := tx.InsertRelease(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, want := range []*release.Release{r1, r2, other} {
			got, err := tx.Release(ctx, want.Pipeline, want.Version)
			if err != nil {
				return err
			}
			equal(t, "release by version", *got, wantRelease(*want))
			got, err = tx.ReleaseByID(ctx, want.ID)
			if err != nil {
				return err
			}
			equal(t, "release by ID", *got, wantRelease(*want))
		}
		return nil
	})

	updateFails(t, s, "same version again", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertRelease(ctx, newRelease("rel-4", "shop", "1.0.0", at(time.Hour)))
	})
	updateFails(t, s, "same ID again", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertRelease(ctx, newRelease("rel-1", "shop", "9.9.9", at(time.Hour)))
	})
	viewFails(t, s, "unknown version", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Release(ctx, "shop", "2.0.0")
		return err
	})
	viewFails(t, s, "version of another pipeline", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Release(ctx, "api", "1.0.0")
		return err
	})
	viewFails(t, s, "unknown ID", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.ReleaseByID(ctx, "rel-9")
		return err
	})
}

func testReleasesOrder(t *testing.T, s store.Store) {
	// Inserted out of creation order; b and c were created at the same time,
	// and c, inserted later, counts as newer.
	var (
		a = newRelease("a", "shop", "1.0.0", at(0))
		b = newRelease("b", "shop", "1.1.0", at(time.Hour))
		c = newRelease("c", "shop", "1.2.0", at(time.Hour))
		d = newRelease("d", "shop", "0.9.0", at(-time.Hour))
		w = newRelease("w", "web", "1.0.0", at(2*time.Hour))
	)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range []*release.Release{a, b, w, c, d} {
			if err := tx.InsertRelease(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func(rs []release.Release) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		all, err := tx.Releases(ctx, "shop", 0)
		if err != nil {
			return err
		}
		equal(t, "releases newest first", ids(all), []string{"c", "b", "a", "d"})
		if len(all) == 4 {
			equal(t, "listed release", all[0], wantRelease(*c))
		}
		two, err := tx.Releases(ctx, "shop", 2)
		if err != nil {
			return err
		}
		equal(t, "two newest releases", ids(two), []string{"c", "b"})
		none, err := tx.Releases(ctx, "api", 0)
		if err != nil {
			return err
		}
		equal(t, "releases of a pipeline without any", ids(none), []string{})
		return nil
	})
}

func testDeployments(t *testing.T, s store.Store) {
	deps := []*store.Deployment{
		{Pipeline: "shop", Environment: "prod", ReleaseID: "r1", ReleaseVersion: "1.0", PromotionID: "p1", At: at(0)},
		{Pipeline: "shop", Environment: "dev", ReleaseID: "r2", ReleaseVersion: "1.1", PromotionID: "p2", At: at(time.Minute)},
		{Pipeline: "shop", Environment: "prod", ReleaseID: "r2", ReleaseVersion: "1.1", PromotionID: "p3", At: at(2 * time.Minute)},
		{Pipeline: "web", Environment: "prod", ReleaseID: "r9", ReleaseVersion: "9.0", PromotionID: "p4", At: at(3 * time.Minute)},
		// Recorded later with an earlier time: order follows recording.
		{Pipeline: "shop", Environment: "prod", ReleaseID: "r1", ReleaseVersion: "1.0", PromotionID: "p5", At: at(time.Minute)},
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var last int64
		for _, d := range deps {
			if err := tx.InsertDeployment(ctx, d); err != nil {
				return err
			}
			if d.Seq <= last {
				t.Errorf("deployment seq %d after %d: want increasing", d.Seq, last)
			}
			last = d.Seq
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Deployments(ctx, "shop", "prod", 0)
		if err != nil {
			return err
		}
		equal(t, "deployments of shop/prod", got, []store.Deployment{
			wantDeployment(*deps[4]), wantDeployment(*deps[2]), wantDeployment(*deps[0]),
		})
		got, err = tx.Deployments(ctx, "shop", "prod", 1)
		if err != nil {
			return err
		}
		equal(t, "latest deployment of shop/prod", got, []store.Deployment{wantDeployment(*deps[4])})
		got, err = tx.Deployments(ctx, "shop", "staging", 0)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("deployments of an environment without any: %s", dump(got))
		}
		return nil
	})
}

func testIdempotency(t *testing.T, s store.Store) {
	r := &store.IdempotencyRecord{
		Key:         "key-1",
		RequestHash: "sha256:request",
		Status:      201,
		ContentType: "application/json",
		Body:        []byte("{\"id\":\"p1\"}\n\x00\xff"),
		CreatedAt:   at(0),
	}
	viewFails(t, s, "unknown key", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Idempotency(ctx, r.Key)
		return err
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutIdempotency(ctx, r) })
	updateFails(t, s, "key used twice", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.PutIdempotency(ctx, &store.IdempotencyRecord{Key: "key-1", RequestHash: "other", Status: 200, CreatedAt: at(time.Second)})
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Idempotency(ctx, r.Key)
		if err != nil {
			return err
		}
		want := *r
		want.CreatedAt = utc(want.CreatedAt)
		equal(t, "idempotency record", *got, want)
		return nil
	})
}
