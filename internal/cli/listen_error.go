package cli

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listenError is the error of a listener that could not start on addr,
// the value of the config field field: it names the field as it is
// written in the file and, when another process holds the address, says
// how to find it and what to do.
func listenError(field, proto, addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s = %q: %w", field, addr, err)
	}
	find := ""
	if _, port, perr := net.SplitHostPort(addr); perr == nil {
		flags := "-ltnp" // TCP
		if proto == "udp" {
			flags = "-lunp"
		}
		find = fmt.Sprintf(" 'ss %s sport = :%s' shows which", flags, port)
	}
	return fmt.Errorf("%s = %q: the address is in use by another process (another edge-sync running?%s): stop it or change %s: %w",
		field, addr, find, field, err)
}

// tlsError is the error of TLS files that do not load when a command
// starts without --check-config, which would have named each field.
func tlsError(cfgPath, cmd string, err error) error {
	return fmt.Errorf("%s: tls: %w (edge-sync %s --config %s --check-config checks every file the config names)", cfgPath, err, cmd, cfgPath)
}
