package main

import (
	"context"
	"errors"
)

// runServe is a placeholder until the command lands.
func runServe(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
