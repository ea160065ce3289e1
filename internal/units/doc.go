// Package units parses and prints the byte sizes and bit rates people read
// and write: in config files, in `edge-sync ctl` tables, in the demo and in
// log lines. It is the one place these formats are defined.
//
// Byte sizes are binary (KiB, MiB, GiB) when printed and read by
// github.com/dustin/go-humanize, except that a bare K, M, G or T stays the
// binary unit config files have always meant by it. Bit rates are decimal
// (kbit/s, Mbit/s, Gbit/s), as link speeds are quoted.
package units
