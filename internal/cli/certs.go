package cli

import (
	"context"

	"github.com/spf13/cobra"

	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/pki"
)

const certsLong = `Creates a certificate authority and the certificates the core and agents
use for mutual TLS, so a first deployment needs no openssl. Private keys are
written with mode 0600. An existing CA in DIR (ca.pem, ca-key.pem) is reused,
so you can add agents later. Existing certificate files are never replaced
unless --force is given.

Files written in DIR:
  ca.pem, ca-key.pem               the CA (created if absent)
  core.pem, core-key.pem           with --core
  agent-NAME.pem, agent-NAME-key.pem   one pair per --agent`

const certsExample = `  edge-sync certs --dir ./pki --core core.example.net --core-host core.example.net,10.0.0.5 --agent site-1
  edge-sync certs --dir ./pki --agent site-2 --agent site-3    # add agents with the same CA
  edge-sync certs --dir ./pki --agent site-1 --force           # re-issue site-1`

// certsOpts are the flags of certs.
type certsOpts struct {
	dir, caName, coreName string
	coreHosts, agents     stringList
	days                  int
	force                 bool
}

func newCertsCmd(env Env) *cobra.Command {
	var o certsOpts
	c := leafCmd("certs", "certs --dir DIR [--core NAME --core-host HOSTS] [--agent NAME ...] [flags]", certsLong, certsExample,
		func(ctx context.Context) error { return runCerts(ctx, env, o) })
	fs := c.Flags()
	fs.StringVar(&o.dir, "dir", "", "directory for the PEM files (required; created if absent)")
	fs.StringVar(&o.caName, "ca-name", "edge-sync CA", "common name of a new CA")
	fs.StringVar(&o.coreName, "core", "", "issue a core (server) certificate with this name")
	fs.Var(&o.coreHosts, "core-host", "DNS names and IP addresses of the core, comma separated (repeatable)")
	fs.Var(&o.agents, "agent", "issue an agent (client) certificate with this name (repeatable)")
	fs.IntVar(&o.days, "days", 3650, "validity of new certificates in days")
	fs.BoolVar(&o.force, "force", false, "replace existing certificate files")
	completeFlag(c, "dir", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	return c
}

func runCerts(ctx context.Context, env Env, o certsOpts) error {
	dir, caName, coreName, coreHosts, agents, days, force := &o.dir, &o.caName, &o.coreName, o.coreHosts, o.agents, &o.days, &o.force
	if *dir == "" {
		return usagef("certs", "--dir is required")
	}
	if *days <= 0 {
		return usagef("certs", "--days %d: must be at least 1", *days)
	}
	if *coreName == "" && len(coreHosts) > 0 {
		return usagef("certs", "--core-host needs --core NAME")
	}
	if *coreName == "" && len(agents) == 0 {
		return usagef("certs", "nothing to issue: give --core NAME and/or --agent NAME")
	}
	seen := map[string]bool{}
	for _, a := range agents {
		if err := checkFileName(a); err != nil {
			return usagef("certs", "--agent %q: %v", a, err)
		}
		if seen[a] {
			return usagef("certs", "--agent %q given twice", a)
		}
		seen[a] = true
	}
	validity := time.Duration(*days) * 24 * time.Hour

	type job struct {
		name, cert, key string
		server          bool
		hosts           []string
	}
	var jobs []job
	if *coreName != "" {
		jobs = append(jobs, job{*coreName, filepath.Join(*dir, "core.pem"), filepath.Join(*dir, "core-key.pem"), true, coreHosts})
	}
	for _, a := range agents {
		jobs = append(jobs, job{a, filepath.Join(*dir, "agent-"+a+".pem"), filepath.Join(*dir, "agent-"+a+"-key.pem"), false, nil})
	}
	// Check every target first so that a refusal leaves nothing half done.
	if !*force {
		for _, j := range jobs {
			for _, f := range []string{j.cert, j.key} {
				if _, err := os.Lstat(f); err == nil {
					return fmt.Errorf("certs: %s: %w (use --force to replace it)", f, pki.ErrExists)
				}
			}
		}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	caFile, caKey := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	ca, created, err := loadOrCreateCA(*caName, caFile, caKey, validity)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if created {
		fmt.Fprintf(env.Stdout, "wrote %s, %s (new CA %q, valid until %s)\n", caFile, caKey, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format(time.DateOnly))
	} else {
		fmt.Fprintf(env.Stdout, "using existing CA %q from %s\n", ca.Cert.Subject.CommonName, caFile)
	}

	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		c, err := ca.Issue(j.name, j.server, j.hosts, validity)
		if err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		if err := pki.WriteCert(c, j.cert, j.key, *force); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
		role := "agent"
		if j.server {
			role = "core"
		}
		fmt.Fprintf(env.Stdout, "wrote %s, %s (%s %q", j.cert, j.key, role, j.name)
		if names := append(append([]string{}, c.Cert.DNSNames...), ipStrings(c)...); j.server && len(names) > 0 {
			fmt.Fprintf(env.Stdout, ", hosts %s", strings.Join(names, ","))
		}
		fmt.Fprintf(env.Stdout, ", valid until %s)\n", c.Cert.NotAfter.Format(time.DateOnly))
	}
	return nil
}

func ipStrings(c *pki.Issued) []string {
	var s []string
	for _, ip := range c.Cert.IPAddresses {
		s = append(s, ip.String())
	}
	return s
}

// loadOrCreateCA reuses the CA in certFile/keyFile if both exist and
// creates it if neither does; one without the other is an error, since
// guessing would orphan every certificate already issued.
func loadOrCreateCA(name, certFile, keyFile string, validity time.Duration) (*pki.CA, bool, error) {
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := pki.ReadCA(certFile, keyFile)
		if err == nil && time.Now().After(ca.Cert.NotAfter) {
			return nil, false, fmt.Errorf("the CA in %s expired on %s; move ca.pem and ca-key.pem away to create a new one (and re-issue every certificate)",
				certFile, ca.Cert.NotAfter.Format(time.DateOnly))
		}
		return ca, false, err
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		ca, err := pki.NewCA(name, validity)
		if err != nil {
			return nil, false, err
		}
		if err := pki.WriteCA(ca, certFile, keyFile, false); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	case certErr == nil:
		return nil, false, fmt.Errorf("%s exists but %s does not; restore the CA key or remove both", certFile, keyFile)
	case keyErr == nil:
		return nil, false, fmt.Errorf("%s exists but %s does not; restore the CA certificate or remove both", keyFile, certFile)
	default:
		return nil, false, errors.Join(certErr, keyErr)
	}
}

// checkFileName accepts names that are safe inside a file name.
func checkFileName(s string) error {
	if s == "" || len(s) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	if s[0] == '.' || s[0] == '-' {
		return errors.New("must not start with '.' or '-'")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("character %q not allowed (use letters, digits, '.', '-', '_')", r)
		}
	}
	return nil
}
