package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func newApplyCommand(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Apply a pipeline's YAML, storing it as the pipeline's next revision",
		Long: `Apply a pipeline's YAML file, storing it as the pipeline's next revision.
Applying content equal to the latest revision changes nothing. Validation
errors are printed one per line as file:line:column: field: message.`,
		Example: `  ferry apply -f shop.yaml
  cat shop.yaml | ferry apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, src, err := readFileArg(g.stdin, file)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Apply(cmd.Context(), name, src)
			if err != nil {
				return err
			}
			return g.print(res, func(w io.Writer) error {
				outcome := "unchanged"
				if res.Created {
					outcome = "created"
				}
				_, err := fmt.Fprintf(w, "pipeline %s revision %d %s\n", res.Pipeline, res.Revision, outcome)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `pipeline YAML file, or "-" for standard input (required)`)
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readFileArg reads the file named by a -f flag, "-" meaning stdin, and
// returns the name to cite in error messages with its content.
func readFileArg(stdin io.Reader, file string) (string, []byte, error) {
	if file == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return "", nil, fmt.Errorf("read standard input: %w", err)
		}
		return "<stdin>", b, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", nil, err
	}
	return file, b, nil
}
