package agent

import "fmt"

// errNoBudget is ErrNoBudget for the endpoint name: which endpoint, and
// what its config needs (docs/budget.md).
func errNoBudget(name string) error {
	return fmt.Errorf(`endpoint %q has %w: add a budget block to endpoint %q in the agent's config, with an allowance and a period (allowance = "50GiB", period = "month"; docs/budget.md)`, name, ErrNoBudget, name)
}
