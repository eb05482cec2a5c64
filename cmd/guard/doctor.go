package main

import (
	"context"
	"errors"
)

// runDoctor is a placeholder until the command lands.
func runDoctor(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
