package cli

import "fmt"

// diagnose adds to a failed start what --check-config finds wrong with the
// config on this machine, so the operator reads the field at fault (and
// its file) beside the error the start tripped over. A start that fails
// for a reason the check cannot see (a port in use) keeps its error alone.
func diagnose(cfgPath string, err error, check func() error) error {
	cerr := check()
	if cerr == nil {
		return err
	}
	return fmt.Errorf("%w\n%s: --check-config finds:\n%w", err, cfgPath, cerr)
}
