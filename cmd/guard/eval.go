package main

import (
	"context"
	"errors"
)

// runEval is a placeholder until the command lands.
func runEval(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
