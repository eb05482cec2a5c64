package main

import (
	"context"
	"errors"
)

// runSetup is a placeholder until the command lands.
func runSetup(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
