package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

// DefaultTokenExpiry is how long a token lives when its creation request
// names no expiry.
const DefaultTokenExpiry = "90d"

// AdminUser is the user of the admin token a server creates on its first
// start.
const AdminUser = "admin"

// Audit actions of token management.
const (
	actionTokenCreate = "token.create"
	actionTokenRevoke = "token.revoke"
)

// createTokenRequest is the body of POST /api/v1/tokens.
type createTokenRequest struct {
	// User names the person or system the token acts for.
	User string `json:"user"`
	// Grants are the roles and scopes the token carries.
	Grants []auth.Grant `json:"grants"`
	// Expires is how long the token lives, as auth.ParseExpiry reads it
	// ("90d", "12h", "never"). Defaults to DefaultTokenExpiry.
	Expires string `json:"expires,omitempty"`
}

// tokenInfo is a token as the API shows it: never its hash nor its plaintext.
type tokenInfo struct {
	ID        string       `json:"id"`
	User      string       `json:"user"`
	Grants    []auth.Grant `json:"grants"`
	CreatedAt time.Time    `json:"createdAt"`
	CreatedBy string       `json:"createdBy,omitempty"`
	ExpiresAt *time.Time   `json:"expiresAt,omitempty"`
	RevokedAt *time.Time   `json:"revokedAt,omitempty"`
}

func newTokenInfo(t auth.Token) tokenInfo {
	info := tokenInfo{ID: t.ID, User: t.User, Grants: nonNil(t.Grants), CreatedAt: t.CreatedAt,
		CreatedBy: t.CreatedBy, RevokedAt: t.RevokedAt}
	if !t.ExpiresAt.IsZero() {
		at := t.ExpiresAt
		info.ExpiresAt = &at
	}
	return info
}

// createdToken is the answer to POST /api/v1/tokens: the only time the
// token's plaintext is shown.
type createdToken struct {
	// Secret is the token's plaintext, to send as "Authorization: Bearer".
	Secret string    `json:"secret"`
	Token  tokenInfo `json:"token"`
}

// createToken creates a token and answers with its plaintext, once.
func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req createTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.User == "" || len(req.User) > MaxActorLength {
		return invalidf("user is required, at most %d bytes: name the person or system the token acts for", MaxActorLength)
	}
	if len(req.Grants) == 0 {
		return invalidf("grants are required: give the token at least one role, such as {\"role\": \"viewer\", \"scope\": \"shop\"}")
	}
	if err := auth.ValidateGrants(req.Grants); err != nil {
		return invalidf("grants: %v", err)
	}
	expires := req.Expires
	if expires == "" {
		expires = DefaultTokenExpiry
	}
	ttl, err := auth.ParseExpiry(expires)
	if err != nil {
		return invalidf("%v", err)
	}
	now := s.now().UTC()
	tok := auth.Token{User: req.User, Grants: req.Grants, CreatedAt: now, CreatedBy: act}
	if ttl > 0 {
		tok.ExpiresAt = now.Add(ttl)
	}
	plaintext, err := insertNewToken(r.Context(), s.store, act, &tok)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, createdToken{Secret: plaintext, Token: newTokenInfo(tok)})
}

// listTokens lists every token, oldest first, without secrets.
func (s *server) listTokens(w http.ResponseWriter, r *http.Request) error {
	var toks []auth.Token
	err := s.store.View(r.Context(), func(tx store.Tx) error {
		var err error
		toks, err = tx.Tokens(r.Context())
		return err
	})
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := make([]tokenInfo, len(toks))
	for i, t := range toks {
		out[i] = newTokenInfo(t)
	}
	return writeJSON(w, http.StatusOK, out)
}

// revokeToken revokes a token at once; revoking it again changes nothing.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	now := s.now().UTC()
	var revoked auth.Token
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.RevokeToken(r.Context(), id, now); err != nil {
			return err
		}
		toks, err := tx.Tokens(r.Context())
		if err != nil {
			return err
		}
		for _, t := range toks {
			if t.ID == id {
				revoked = t
			}
		}
		return tx.AppendAudit(r.Context(), &audit.Event{Time: now, Actor: act, Action: actionTokenRevoke,
			Subject: "token/" + id, Details: audit.Details(map[string]any{"user": revoked.User})})
	})
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, codeNotFound, "no token has ID %q; `ferry token list` shows them", id)
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return writeJSON(w, http.StatusOK, newTokenInfo(revoked))
}

// maxIDAttempts bounds the new plaintexts tried when a token ID is taken.
const maxIDAttempts = 5

// insertNewToken gives tok a new plaintext, stores tok with an audit event
// by actor, and returns the plaintext. It fills in tok's ID and Hash.
func insertNewToken(ctx context.Context, st store.Store, actor string, tok *auth.Token) (string, error) {
	for range maxIDAttempts {
		plaintext, err := auth.NewToken()
		if err != nil {
			return "", err
		}
		err = insertToken(ctx, st, actor, plaintext, tok)
		if errors.Is(err, store.ErrConflict) {
			continue // another token has this ID
		}
		if err != nil {
			return "", err
		}
		return plaintext, nil
	}
	return "", errors.New("create token: every new token ID was taken")
}

// insertToken stores tok for plaintext with an audit event by actor, in one
// transaction. The event names the token's ID, user, grants and expiry,
// never its plaintext or hash.
func insertToken(ctx context.Context, st store.Store, actor, plaintext string, tok *auth.Token) error {
	tok.ID, tok.Hash = auth.TokenID(plaintext), auth.HashToken(plaintext)
	return st.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertToken(ctx, tok); err != nil {
			return err
		}
		details := map[string]any{"user": tok.User, "grants": tok.Grants}
		if !tok.ExpiresAt.IsZero() {
			details["expiresAt"] = tok.ExpiresAt
		}
		return tx.AppendAudit(ctx, &audit.Event{Time: tok.CreatedAt, Actor: actor, Action: actionTokenCreate,
			Subject: "token/" + tok.ID, Details: audit.Details(details)})
	})
}

// BootstrapAdmin makes sure a store that has no token gets one: an admin
// token on the global scope for AdminUser, which never expires. The token is
// plaintext when it is not empty (it must be well formed), or a new one. It
// returns the plaintext and true when it stored a token, or "" and false
// when the store had tokens already. Its creation is audited with actor
// "system".
func BootstrapAdmin(ctx context.Context, st store.Store, plaintext string, now time.Time) (string, bool, error) {
	if plaintext != "" {
		if err := auth.CheckTokenFormat(plaintext); err != nil {
			return "", false, err
		}
	}
	var existing int
	if err := st.View(ctx, func(tx store.Tx) error {
		toks, err := tx.Tokens(ctx)
		existing = len(toks)
		return err
	}); err != nil {
		return "", false, fmt.Errorf("list tokens: %w", err)
	}
	if existing > 0 {
		return "", false, nil
	}
	tok := auth.Token{User: AdminUser, Grants: []auth.Grant{{Role: auth.RoleAdmin}}, CreatedAt: now.UTC(), CreatedBy: "system"}
	if plaintext == "" {
		p, err := insertNewToken(ctx, st, "system", &tok)
		if err != nil {
			return "", false, fmt.Errorf("create admin token: %w", err)
		}
		return p, true, nil
	}
	err := insertToken(ctx, st, "system", plaintext, &tok)
	if errors.Is(err, store.ErrConflict) {
		// Another replica stored it first.
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store admin token: %w", err)
	}
	return plaintext, true, nil
}
