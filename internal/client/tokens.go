package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ferry-dev/ferry/internal/auth"
)

// TokenRequest asks for a new API token.
type TokenRequest struct {
	// User names the person or system the token acts for.
	User string `json:"user"`
	// Grants are the roles and scopes the token carries; at least one.
	Grants []auth.Grant `json:"grants"`
	// Expires is how long the token lives ("90d", "12h", "never"); empty
	// means the server's default, 90 days.
	Expires string `json:"expires,omitempty"`
}

// CreatedToken is a new token: its plaintext, shown only this once, and
// what the server stored.
type CreatedToken struct {
	// Secret is the token's plaintext.
	Secret string `json:"secret"`
	// Token describes it; its Hash is empty.
	Token auth.Token `json:"token"`
}

// CreateToken creates an API token. It needs an admin token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*CreatedToken, error) {
	var out CreatedToken
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tokens lists every API token, oldest first, without secrets. It needs an
// admin token.
func (c *Client) Tokens(ctx context.Context) ([]auth.Token, error) {
	var out []auth.Token
	_, err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
	return out, err
}

// RevokeToken revokes the token with ID id and returns it. It needs an admin
// token.
func (c *Client) RevokeToken(ctx context.Context, id string) (*auth.Token, error) {
	var out auth.Token
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
