// Command ferry is Ferry's single binary: the server (ferry server, ferry up)
// and the command-line client of its HTTP API (every other command).
//
// Exit codes: 0 success, 1 error, 2 usage error, 3 a followed promotion ended
// but not in success. exitCode decides them; nothing else calls os.Exit.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/client"
	"github.com/ferry-dev/ferry/internal/promotion"
)

// Exit codes.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitNotSucceeded = 3
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process's exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(g, os.Getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		report(stderr, cmd, g, err)
	}
	return exitCode(err)
}

// exitCode maps the error a command returned to the process's exit code.
func exitCode(err error) int {
	var usage *usageError
	var ended *endedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &ended):
		return exitNotSucceeded
	default:
		return exitError
	}
}

// report prints err for a person.
func report(w io.Writer, cmd *cobra.Command, g *globals, err error) {
	var apiErr *client.Error
	var usage *usageError
	var ended *endedError
	var opErr *net.OpError
	switch {
	case errors.As(err, &ended):
		// Following the promotion printed how it ended.
	case errors.As(err, &apiErr) && len(apiErr.Problem.Errors) > 0:
		// Validation errors: one "file:line:column: field: message" per line.
		for _, p := range apiErr.Problem.Errors {
			fmt.Fprintln(w, p.String())
		}
	case errors.As(err, &apiErr) && apiErr.Problem.Code == "unauthenticated":
		fmt.Fprintln(w, "error:", err)
		fmt.Fprintln(w, "Pass an API token with --token or FERRY_TOKEN; an admin creates one with `ferry token create`.")
	case errors.As(err, &usage):
		fmt.Fprintln(w, "error:", err)
		if cmd != nil {
			fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	case errors.As(err, &opErr):
		fmt.Fprintln(w, "error:", err)
		fmt.Fprintf(w, "Is a Ferry server running at %s? Set it with --server or FERRY_SERVER.\n", g.server)
	default:
		fmt.Fprintln(w, "error:", err)
	}
}

// usageError is a mistake in the command line: an unknown command or flag, a
// missing required flag, a bad flag value, or flags that do not go together.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usageError with a formatted message.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err, when not nil, as a usage error.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	return &usageError{err}
}

// endedError reports that a followed promotion ended in a state other than succeeded.
type endedError struct {
	id      string
	state   promotion.State
	message string
}

func (e *endedError) Error() string {
	msg := fmt.Sprintf("promotion %s ended %s", e.id, e.state)
	if e.message != "" {
		msg += ": " + e.message
	}
	return msg
}
