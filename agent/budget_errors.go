package agent

import "fmt"

// errNoBudget is ErrNoBudget for the endpoint name: which endpoint, and
// what its config needs (docs/budget.md).
func errNoBudget(name string) error {
	return fmt.Errorf(`endpoint %q has %w: add a budget block to endpoint %q in the agent's config, with an allowance and a period (allowance = "50GiB", period = "month"; docs/budget.md)`, name, ErrNoBudget, name)
}

// budgeted returns the named endpoint when it has a budget, and
// errNoBudget when it has none: what every transport.budget.* command
// needs first.
func (a *Agent) budgeted(name string) (*endpoint, error) {
	e, err := a.endpoint(name)
	if err != nil {
		return nil, err
	}
	if e.budget == nil {
		return nil, errNoBudget(e.name)
	}
	return e, nil
}
