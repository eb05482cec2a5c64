package main

import (
	"context"
	"errors"
)

// runAudit is a placeholder until the command lands.
func runAudit(ctx context.Context, args []string, s stdio) error {
	return errors.New("not implemented yet")
}
