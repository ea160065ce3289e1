package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FieldError is a bad value in a config: which field, where it was written
// (when it came from a file) and what is wrong with it.
type FieldError struct {
	Field string    // dotted path, e.g. "outbox.max_ops" or `endpoint "core".address`
	Pos   hcl.Range // zero when the value did not come from a file
	Err   error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Pos.Filename != "" {
		fmt.Fprintf(&b, "%s:%d,%d: ", e.Pos.Filename, e.Pos.Start.Line, e.Pos.Start.Column)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Errors is every problem found in one config, in file order.
type Errors []error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error { return es }

// errorList collects field errors while decoding or validating.
type errorList struct {
	errs Errors
	pos  map[string]hcl.Range // field path → where it was written
}

func (l *errorList) add(field string, err error) {
	l.errs = append(l.errs, &FieldError{Field: field, Pos: l.pos[field], Err: err})
}

func (l *errorList) addf(field, format string, args ...any) {
	l.add(field, fmt.Errorf(format, args...))
}

func (l *errorList) addDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		var r hcl.Range
		if d.Subject != nil {
			r = *d.Subject
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		l.errs = append(l.errs, &FieldError{Field: l.fieldAt(r), Pos: r, Err: errors.New(msg)})
	}
}

// fieldAt names the innermost attribute written at r, or "" when r is not
// inside one (HCL's message then names the argument or block itself).
func (l *errorList) fieldAt(r hcl.Range) string {
	best, bestLen := "", -1
	for field, fr := range l.pos {
		if fr.Filename != r.Filename || !fr.ContainsOffset(r.Start.Byte) {
			continue
		}
		if n := fr.End.Byte - fr.Start.Byte; bestLen < 0 || n < bestLen {
			best, bestLen = field, n
		}
	}
	return best
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs
}
