//go:build tools

// Pins the CLI's main package so `go mod tidy` keeps its dependencies.
package toolchain

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
