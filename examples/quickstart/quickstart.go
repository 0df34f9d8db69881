// Package quickstart embeds the example pipeline that `ferry up` applies.
package quickstart

import _ "embed"

// Pipeline is the quickstart pipeline's YAML.
//
//go:embed pipeline.yaml
var Pipeline []byte

// Filename is the name the pipeline is applied under.
const Filename = "examples/quickstart/pipeline.yaml"
