package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

// newToken returns a stored token for user with a hash derived from id.
func newToken(id, user string, created time.Duration, grants ...auth.Grant) *auth.Token {
	return &auth.Token{
		ID:        id,
		User:      user,
		Grants:    grants,
		Hash:      auth.HashToken("plaintext of " + id),
		CreatedAt: at(created),
		CreatedBy: "admin",
	}
}

// wantToken returns tok as a store returns it: times in UTC.
func wantToken(tok auth.Token) auth.Token {
	tok.CreatedAt = utc(tok.CreatedAt)
	if !tok.ExpiresAt.IsZero() {
		tok.ExpiresAt = utc(tok.ExpiresAt)
	}
	tok.RevokedAt = utcPtr(tok.RevokedAt)
	return tok
}

// testTokens round-trips tokens with every kind of grant, expiry and
// revocation, lists them oldest first, and revokes them.
func testTokens(t *testing.T, s store.Store) {
	admin := newToken("AAAAaaaa", "root", 0, auth.Grant{Role: auth.RoleAdmin})
	ci := newToken("BBBBbbbb", "ci", time.Second,
		auth.Grant{Role: auth.RoleReleaser, Scope: auth.Scope{Pipeline: "shop"}},
		auth.Grant{Role: auth.RolePromoter, Scope: auth.Scope{Pipeline: "shop", Environment: "staging"}})
	ci.ExpiresAt = at(90 * 24 * time.Hour)
	none := newToken("CCCCcccc", "nobody", 2*time.Second)
	none.CreatedBy = ""
	revoked := newToken("DDDDdddd", "eve", 3*time.Second, auth.Grant{Role: auth.RoleViewer})
	revoked.RevokedAt = ptr(at(time.Minute))
	all := []*auth.Token{revoked, none, admin, ci}

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tok := range all {
			if err := tx.InsertToken(ctx, tok); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tok := range all {
			got, err := tx.TokenByHash(ctx, tok.Hash)
			if err != nil {
				return err
			}
			equal(t, "token "+tok.ID, *got, wantToken(*tok))
		}
		listed, err := tx.Tokens(ctx)
		if err != nil {
			return err
		}
		equal(t, "listed tokens", listed, []auth.Token{
			wantToken(*admin), wantToken(*ci), wantToken(*none), wantToken(*revoked)})
		return nil
	})

	// Revoking sets the time once; revoking again keeps the first time.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.RevokeToken(ctx, ci.ID, at(time.Hour)); err != nil {
			return err
		}
		return tx.RevokeToken(ctx, revoked.ID, at(2*time.Hour))
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RevokeToken(ctx, ci.ID, at(3*time.Hour))
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.TokenByHash(ctx, ci.Hash)
		if err != nil {
			return err
		}
		want := wantToken(*ci)
		want.RevokedAt = ptr(utc(at(time.Hour)))
		equal(t, "revoked token", *got, want)
		if got.Valid(at(time.Hour)) == nil {
			t.Errorf("a revoked token is valid")
		}
		got, err = tx.TokenByHash(ctx, revoked.Hash)
		if err != nil {
			return err
		}
		equal(t, "token revoked twice", *got, wantToken(*revoked))
		return nil
	})
}

// testTokenErrors checks the conflicts on ID and hash and the missing
// tokens.
func testTokenErrors(t *testing.T, s store.Store) {
	tok := newToken("EEEEeeee", "alice", 0, auth.Grant{Role: auth.RoleViewer})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertToken(ctx, tok) })

	sameID := newToken(tok.ID, "bob", time.Second)
	sameID.Hash = auth.HashToken("another plaintext")
	updateFails(t, s, "insert a token with an existing ID", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertToken(ctx, sameID)
	})
	sameHash := newToken("FFFFffff", "bob", time.Second)
	sameHash.Hash = tok.Hash
	updateFails(t, s, "insert a token with an existing hash", store.ErrConflict, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertToken(ctx, sameHash)
	})
	viewFails(t, s, "look up an unknown hash", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.TokenByHash(ctx, auth.HashToken("unknown"))
		return err
	})
	updateFails(t, s, "revoke an unknown token", store.ErrNotFound, func(ctx context.Context, tx store.Tx) error {
		return tx.RevokeToken(ctx, "GGGGgggg", at(0))
	})
	// Nothing of the refused tokens was stored.
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		listed, err := tx.Tokens(ctx)
		if err != nil {
			return err
		}
		equal(t, "tokens", listed, []auth.Token{wantToken(*tok)})
		return nil
	})
}

// testTokensEmpty checks that a new store lists no tokens, as an empty
// list: the server creates the first admin token when it sees none.
func testTokensEmpty(t *testing.T, s store.Store) {
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		listed, err := tx.Tokens(ctx)
		if err != nil {
			return err
		}
		if listed == nil || len(listed) != 0 {
			t.Errorf("tokens of a new store = %#v, want an empty list", listed)
		}
		return nil
	})
}
