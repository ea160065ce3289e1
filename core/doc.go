// Package core is the receiving server at the core site and its store.
package core
