// Package units parses and prints the byte sizes, bit rates and durations
// people read and write: in config files, in `edge-sync` flags and
// `edge-sync ctl` tables, in the demo and in log lines. It is the one place
// these formats are defined.
//
// Byte sizes are read by github.com/dustin/go-humanize (binary KiB, MiB,
// GiB and decimal KB, MB, GB), except that a bare K, M, G or T stays the
// binary unit config files have always meant by it; they are printed with
// a binary unit and one decimal below 100 of it ("11.7 MiB", "256 KiB").
// Bit rates are decimal (kbit/s, Mbit/s, Gbit/s), as link speeds are
// quoted. Durations are Go's ("500ms", "1h30m") plus days and weeks ("30d",
// "2w", "1d12h"), and print with their two largest units ("3m12s", "2d4h").
package units
