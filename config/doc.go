// Package config reads the HCL configuration files of the agent and the core.
//
// A config is a plain struct with documented defaults: [DefaultAgent] and
// [DefaultCore] return them, [ParseAgent] and [ParseCore] read a file from an
// io.Reader on top of the defaults, and Validate checks ranges. Every error
// names the field and, when it came from a file, its file:line.
//
// Byte sizes ("64KiB", "1GiB", "10MB", plain integers) and durations
// ("500ms", "10m", "72h", "30d", "2w") are read and printed by
// internal/units.
//
// [LoadAgent] and [LoadCore] resolve relative paths in a file (data_dir,
// TLS files, outbox, socket and token files, store files) against the
// file's directory, so a file means the same whatever the working
// directory; ParseAgent and ParseCore leave them as written.
//
// Validate checks values; Check ([Agent.Check], [Core.Check]) checks them
// against the machine, as `--check-config` does: the TLS files load and
// the certificate is signed by the CA, addresses resolve, the data
// directory can be created and written, the control API's token is long
// enough. Check changes nothing.
//
// # Who reads these structs
//
// The components take their struct whole, as loaded and validated, plus an
// Options struct for what is not in a file (TLS configs loaded from the
// files the struct names, a logger, test hooks):
//
//	agent.New(cfg config.Agent, agent.Options)
//	core.OpenStore(cfg config.Core)                       // store.backend "bbolt"
//	jsstore.OpenStore(ctx, cfg config.Core, jsstore.Options) // store.backend "jetstream"
//	core.New(cfg config.Core, store, core.Options)
//
// The mapping from these fields to a component's settings lives in that
// component, once; the link monitor's block is linkmon.Config itself
// ([Monitor]) so that its fields and defaults exist once, the file's Mbit/s
// and percent converted to linkmon's bit/s and fractions where the file is
// read. The CLI loads a file, applies its flags' overrides to the struct,
// and hands it over; it does not map fields by hand.
//
// The package imports no other edge-sync package but the root one,
// linkmon, internal/units and internal/pki (Check reads the CA files).
package config
