// Package config reads the HCL configuration files of the agent and the core.
//
// A config is a plain struct with documented defaults: [DefaultAgent] and
// [DefaultCore] return them, [ParseAgent] and [ParseCore] read a file from an
// io.Reader on top of the defaults, and Validate checks ranges. Every error
// names the field and, when it came from a file, its file:line.
//
// Byte sizes ("64KiB", "1GiB", "10MB", plain integers) are read and printed
// by internal/units.
//
// The package imports no other edge-sync package but the root one and
// internal/units: agent and core turn these structs into their components'
// options.
package config
