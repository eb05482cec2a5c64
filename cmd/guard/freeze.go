package main

import (
	"context"
	"errors"
)

// runFreeze is a placeholder until the command lands.
func runFreeze(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
