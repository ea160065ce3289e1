// Package config reads the HCL configuration files of the agent and the core.
//
// A config is a plain struct with documented defaults: [DefaultAgent] and
// [DefaultCore] return them, [ParseAgent] and [ParseCore] read a file from an
// io.Reader on top of the defaults, and Validate checks ranges. Every error
// names the field and, when it came from a file, its file:line.
//
// The package imports no other edge-sync package but the root one and
// linkmon: agent and core turn these structs into their components'
// options, except the link monitor's block, which is linkmon.Config itself
// ([Monitor]) so that its fields and defaults exist once. The file's Mbit/s
// and percent are converted to linkmon's bit/s and fractions where the file
// is read.
package config
