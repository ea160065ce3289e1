package config

import "net"

// An endpoint's addresses (docs/design.md, "Several core addresses"):
// `address = "core:7443"` or `addresses = ["core-a:7443", "core-b:7443"]`,
// the preferred first.

// applyAddresses takes address or addresses, and fail_back, from the
// endpoint block.
func (re *rawEndpoint) applyAddresses(l *errorList, p string, e *Endpoint) {
	switch {
	case re.Address != nil && re.Addresses != nil:
		l.addf(p, `set address or addresses, not both (addresses = ["a:7443", "b:7443"] lists every core, the preferred first)`)
	case re.Addresses != nil:
		e.Addresses = append([]string(nil), (*re.Addresses)...)
		if len(e.Addresses) == 0 {
			l.addf(p+".addresses", `must name at least one host:port, e.g. addresses = ["core-a:7443", "core-b:7443"]`)
			break
		}
		e.Address = e.Addresses[0]
	case re.Address == nil:
		l.addf(p, `address is required, e.g. address = "core.example.net:7443" (or addresses = [...] for several cores)`)
	}
	e.FailBack = parseDuration(l, p+".fail_back", re.FailBack, 0)
}

// validateAddresses checks each of an endpoint's addresses (p is the
// endpoint block's path).
func (e Endpoint) validateAddresses(l *errorList, p string) {
	seen := map[string]bool{}
	for i, a := range e.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			l.addf(p+".addresses", "entry %d: want host:port, got %q", i+1, a)
		}
		if seen[a] {
			l.addf(p+".addresses", "%q is listed twice", a)
		}
		seen[a] = true
	}
	if len(e.Addresses) > 0 && e.Address != e.Addresses[0] {
		l.addf(p+".address", "is %q but addresses begins with %q; leave out address when addresses is set", e.Address, e.Addresses[0])
	}
	if e.FailBack < 0 {
		l.addf(p+".fail_back", "must not be negative, got %s", e.FailBack)
	}
}
