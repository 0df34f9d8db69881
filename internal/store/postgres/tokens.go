package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

const tokenColumns = `id, hash, user_name, grants, created_at, expires_at, revoked_at, created_by`

// InsertToken refuses a duplicate in its statement (ON CONFLICT DO NOTHING)
// so that the refusal does not abort the transaction.
func (t *tx) InsertToken(ctx context.Context, tok *auth.Token) error {
	if err := t.writable("insert token"); err != nil {
		return err
	}
	grants, err := encGrants(tok.Grants)
	if err != nil {
		return fmt.Errorf("insert token %s: %w", tok.ID, err)
	}
	var expires *string
	if !tok.ExpiresAt.IsZero() {
		expires = encTimePtr(&tok.ExpiresAt)
	}
	tag, err := t.exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`,
		tok.ID, tok.Hash, tok.User, grants, encTime(tok.CreatedAt), expires, encTimePtr(tok.RevokedAt), tok.CreatedBy)
	if err == nil && tag.RowsAffected() == 0 || isUnique(err) {
		return fmt.Errorf("insert token %s: a token with this ID or hash exists: %w", tok.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert token %s: %w", tok.ID, err)
	}
	return nil
}

func (t *tx) TokenByHash(ctx context.Context, hash string) (*auth.Token, error) {
	tok, err := scanToken(t.queryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load token: %w", err)
	}
	return tok, nil
}

func (t *tx) Tokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := t.query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	out, err := collect(t, rows, err, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

func (t *tx) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if err := t.writable("revoke token"); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, encTime(at), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func scanToken(sc scanner) (*auth.Token, error) {
	var (
		tok                  auth.Token
		grants, createdAt    string
		expiresAt, revokedAt *string
	)
	if err := sc.Scan(&tok.ID, &tok.Hash, &tok.User, &grants, &createdAt, &expiresAt, &revokedAt, &tok.CreatedBy); err != nil {
		return nil, err
	}
	var err error
	if tok.Grants, err = decGrants(grants); err != nil {
		return nil, fmt.Errorf("token %s: decode grants: %w", tok.ID, err)
	}
	if tok.CreatedAt, err = decTime(createdAt); err != nil {
		return nil, fmt.Errorf("token %s: %w", tok.ID, err)
	}
	if expiresAt != nil {
		if tok.ExpiresAt, err = decTime(*expiresAt); err != nil {
			return nil, fmt.Errorf("token %s: %w", tok.ID, err)
		}
	}
	if tok.RevokedAt, err = decTimePtr(revokedAt); err != nil {
		return nil, fmt.Errorf("token %s: %w", tok.ID, err)
	}
	return &tok, nil
}

// encGrants encodes grants as a JSON array; none is [].
func encGrants(grants []auth.Grant) (string, error) {
	if grants == nil {
		grants = []auth.Grant{}
	}
	b, err := json.Marshal(grants)
	if err != nil {
		return "", fmt.Errorf("encode grants: %w", err)
	}
	return string(b), nil
}

// decGrants decodes what encGrants stored; an empty array is nil.
func decGrants(s string) ([]auth.Grant, error) {
	var grants []auth.Grant
	if err := json.Unmarshal([]byte(s), &grants); err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		return nil, nil
	}
	return grants, nil
}
