package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
)

// defaultServer is the server the CLI talks to without --server or FERRY_SERVER.
const defaultServer = "http://127.0.0.1:7420"

// globals holds the global flags and the process's streams; every command
// constructor receives it.
type globals struct {
	// server is the base URL of the Ferry server (--server, FERRY_SERVER).
	server string
	// output is the output format: table, json or yaml (-o).
	output string
	// actor is who makes the requests (--actor, FERRY_ACTOR, $USER), for a
	// server running with --auth=off.
	actor string
	// token is the API token (--token, FERRY_TOKEN).
	token string

	stdin          io.Reader
	stdout, stderr io.Writer
}

// client returns a client of the server named by --server.
func (g *globals) client() (*client.Client, error) {
	u, err := url.Parse(g.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--server %q: want a URL such as %s", g.server, defaultServer)
	}
	// No overall timeout: long-polls last up to a minute, and contexts end requests.
	c := client.New(g.server, &http.Client{})
	c.Actor = g.actor
	c.UserAgent = "ferry/" + version
	c.Token = g.token
	if c.Token == "" && strings.TrimRight(g.server, "/") == defaultServer {
		if c.Token, err = readDefaultToken(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newRootCommand builds the command tree; getenv supplies the environment
// variables that set flag defaults.
func newRootCommand(g *globals, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Move immutable releases through a pipeline of environments",
		Long: `Ferry moves immutable releases through a pipeline of environments, deciding
at each boundary whether the move may happen, doing it, checking it worked,
rolling it back when it did not, and recording every decision.

This binary is the server (ferry server, ferry up) and the client of its API.

Commands that call the server send the API token given with --token or
FERRY_TOKEN; without either, talking to the default local server, they read
./ferry-data/admin-token, which a server started in this directory writes.

Exit codes: 0 success, 1 error (including a missing, invalid or revoked
token, and a token without the role needed), 2 usage error, 3 a promotion
followed with --wait ended but not in success, a plan that would not proceed
now, or a canary judgement that did not pass.`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return checkCommandLine(cmd, g)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })

	actor := getenv("FERRY_ACTOR")
	if actor == "" {
		actor = getenv("USER")
	}
	server := getenv("FERRY_SERVER")
	if server == "" {
		server = defaultServer
	}
	flags := root.PersistentFlags()
	flags.StringVar(&g.server, "server", server, "Ferry server URL (env FERRY_SERVER)")
	flags.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	flags.StringVar(&g.actor, "actor", actor, "who makes the requests, for a server running with --auth=off (env FERRY_ACTOR, default $USER); otherwise the token's user is recorded")
	flags.StringVar(&g.token, "token", getenv("FERRY_TOKEN"),
		"API token (env FERRY_TOKEN); with neither, the CLI talking to the default local server reads ./ferry-data/admin-token")

	root.AddGroup(
		&cobra.Group{ID: "pipelines", Title: "Pipelines and releases:"},
		&cobra.Group{ID: "promotions", Title: "Promotions:"},
		&cobra.Group{ID: "gates", Title: "Gates and approvals:"},
		&cobra.Group{ID: "server", Title: "Server:"},
		&cobra.Group{ID: "store", Title: "Store:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("pipelines",
		newApplyCommand(g), newPipelinesCommand(g), newPipelineCommand(g),
		newReleaseCommand(g), newReleasesCommand(g), newStatusCommand(g), newHistoryCommand(g),
	)
	add("promotions",
		newPromoteCommand(g), newPromotionsCommand(g), newPromotionCommand(g), newLogsCommand(g),
		newAbortCommand(g), newResumeCommand(g), newAdvanceCommand(g), newRollbackCommand(g), newAuditCommand(g, getenv),
	)
	add("gates",
		newPlanCommand(g), newApprovalsCommand(g), newApproveCommand(g), newRejectCommand(g),
		newReviewsCommand(g), newReviewCommand(g),
	)
	add("gates", newJudgeCommand(g))
	add("promotions", newStatsCommand(g))
	add("server", newServerCommand(g), newUpCommand(g), newClusterCommand(g), newTokenCommand(g), newBenchCommand(g))
	add("store", newBackupCommand(g), newRestoreCommand(g), newMigrateCommand(g, getenv))
	root.AddCommand(newDemoCommand())
	markUsageErrors(root)
	return root
}

// checkCommandLine runs before every command: it validates the global flags
// and the command's required flags, reporting problems as usage errors.
func checkCommandLine(cmd *cobra.Command, g *globals) error {
	switch g.output {
	case "table", "json", "yaml":
	default:
		return usageErrorf("-o %q: want table, json or yaml", g.output)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return asUsage(err)
	}
	return asUsage(cmd.ValidateFlagGroups())
}

// markUsageErrors makes the errors cobra reports about the command line usage
// errors: it wraps every command's argument check, and gives each command
// group a RunE that refuses unknown subcommands.
func markUsageErrors(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageErrorf("%s", msg)
		}
	} else if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			return asUsage(check(cmd, args))
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// exactArgs requires n arguments, named in the error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, ", "), len(args))
		}
		return nil
	}
}
