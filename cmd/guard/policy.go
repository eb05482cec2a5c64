package main

import (
	"context"
	"errors"
)

// runPolicy is a placeholder until the command lands.
func runPolicy(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
