// Package policies embeds the built-in Rego policies of Merge Guard and their
// tests. The input document they read is documented in README.md beside them.
package policies

import "embed"

// FS holds every *.rego file of this directory, tests included.
//
//go:embed *.rego
var FS embed.FS
