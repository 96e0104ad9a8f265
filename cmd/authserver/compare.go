package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func compareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare",
		Short: "Measure what every strategy guarantees and costs, side by side",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("not built yet")
		},
	}
}
