//go:build !linux

package main

import "os/exec"

// startChild starts cmd; only on Linux does the child end with the load
// tool.
func startChild(cmd *exec.Cmd) error { return cmd.Start() }
