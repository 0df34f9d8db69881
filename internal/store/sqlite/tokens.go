package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

const tokenColumns = `id, hash, user_name, grants, created_at, expires_at, revoked_at, created_by`

func (t *tx) InsertToken(ctx context.Context, tok *auth.Token) error {
	if err := t.writable("insert token"); err != nil {
		return err
	}
	grants, err := encGrants(tok.Grants)
	if err != nil {
		return fmt.Errorf("insert token %s: %w", tok.ID, err)
	}
	var expires any
	if !tok.ExpiresAt.IsZero() {
		expires = encTime(tok.ExpiresAt)
	}
	_, err = t.exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tok.ID, tok.Hash, tok.User, grants, encTime(tok.CreatedAt), expires, encTimePtr(tok.RevokedAt), tok.CreatedBy)
	if isUnique(err) {
		return fmt.Errorf("insert token %s: a token with this ID or hash exists: %w", tok.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert token %s: %w", tok.ID, err)
	}
	return nil
}

func (t *tx) TokenByHash(ctx context.Context, hash string) (*auth.Token, error) {
	tok, err := scanToken(t.queryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load token: %w", err)
	}
	return tok, nil
}

func (t *tx) Tokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := t.query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []auth.Token{}
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, *tok)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

func (t *tx) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if err := t.writable("revoke token"); err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, encTime(at), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func scanToken(sc scanner) (*auth.Token, error) {
	var (
		tok                  auth.Token
		grants, createdAt    string
		expiresAt, revokedAt sql.NullString
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
	if expiresAt.Valid {
		if tok.ExpiresAt, err = decTime(expiresAt.String); err != nil {
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
