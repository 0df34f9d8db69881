package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/client"
)

func newTokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (needs an admin token)",
		Long: `Manage the API tokens the server accepts. Each token acts for one user
with one role on one scope: the whole of Ferry (*), a pipeline (shop) or
an environment of a pipeline (shop/prod). Roles: viewer reads; releaser
creates releases; promoter promotes, aborts and rolls back; approver
approves; admin does everything. These commands need an admin token.`,
	}
	cmd.AddCommand(newTokenCreateCommand(g), newTokenListCommand(g), newTokenRevokeCommand(g))
	return cmd
}

func newTokenCreateCommand(g *globals) *cobra.Command {
	var user, role, scope, expires string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print it once",
		Long: `Create an API token for a user with a role on a scope, and print it with its
ID. The token is shown this once: the server keeps only its hash. Give it to
its user, who passes it with --token or FERRY_TOKEN.`,
		Example: `  ferry token create --user ci --role releaser --scope shop
  ferry token create --user alice --role promoter --scope shop/prod --expires 30d
  ferry token create --user bob --role viewer --expires never`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return usageErrorf("--role: %v", err)
			}
			sc, err := auth.ParseScope(scope)
			if err != nil {
				return usageErrorf("--scope: %v", err)
			}
			if _, err := auth.ParseExpiry(expires); err != nil {
				return usageErrorf("--expires: %v", err)
			}
			if strings.TrimSpace(user) == "" {
				return usageErrorf("--user must not be empty")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			created, err := c.CreateToken(cmd.Context(), client.TokenRequest{
				User: user, Grants: []auth.Grant{{Role: r, Scope: sc}}, Expires: expires})
			if err != nil {
				return err
			}
			return g.print(created, func(w io.Writer) error {
				t := created.Token
				fmt.Fprintf(w, "token (shown once): %s\n", created.Secret)
				fmt.Fprintf(w, "id: %s  user: %s  grants: %s  expires: %s\n", t.ID, t.User, grantsText(t.Grants), expiryText(t))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "the person or system the token acts for (required)")
	f.StringVar(&role, "role", "", "viewer, releaser, promoter, approver or admin (required)")
	f.StringVar(&scope, "scope", auth.GlobalScope, "what the role applies to: * (everything), PIPELINE or PIPELINE/ENV")
	f.StringVar(&expires, "expires", "90d", "how long the token lives: days (90d), a duration (12h) or never")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tokens: ID, user, grants, created, expires, revoked",
		Long: `List every token the server knows, oldest first, revoked and expired ones
included. Tokens themselves are never shown, only their IDs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(toks, func(w io.Writer) error {
				if len(toks) == 0 {
					fmt.Fprintln(w, "no tokens")
					return nil
				}
				tw := newTable(w)
				row(tw, "ID", "USER", "GRANTS", "CREATED", "EXPIRES", "REVOKED")
				for _, t := range toks {
					row(tw, t.ID, t.User, grantsText(t.Grants), formatTime(t.CreatedAt), expiryText(t), formatTimePtr(t.RevokedAt))
				}
				return tw.Flush()
			})
		},
	}
}

func newTokenRevokeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it stops working at once",
		Example: `  ferry token list
  ferry token revoke AbC123xy`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(t, func(w io.Writer) error {
				fmt.Fprintf(w, "token %s of %s revoked at %s\n", t.ID, t.User, formatTimePtr(t.RevokedAt))
				return nil
			})
		},
	}
}

// grantsText describes grants as "role on scope", comma-separated.
func grantsText(grants []auth.Grant) string {
	if len(grants) == 0 {
		return "-"
	}
	parts := make([]string, len(grants))
	for i, gr := range grants {
		parts[i] = gr.String()
	}
	return strings.Join(parts, ", ")
}

// expiryText says when t expires, or "never".
func expiryText(t auth.Token) string {
	if t.ExpiresAt.IsZero() {
		return "never"
	}
	return formatTime(t.ExpiresAt)
}
