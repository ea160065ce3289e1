package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxConfigBytes bounds what a config reader may hand us.
const maxConfigBytes = 4 << 20

// decodeFile parses HCL from r into raw (a struct with gohcl tags) and
// returns the position of every attribute by its dotted path.
func decodeFile(r io.Reader, filename string, raw any) (map[string]hcl.Range, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	if len(src) > maxConfigBytes {
		return nil, fmt.Errorf("read %s: config larger than %d bytes", filename, maxConfigBytes)
	}
	l := &errorList{}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		l.addDiags(diags)
		return nil, l.err()
	}
	pos := map[string]hcl.Range{}
	collectPositions(file.Body.(*hclsyntax.Body), "", pos)
	if diags := gohcl.DecodeBody(file.Body, nil, raw); diags.HasErrors() {
		l.pos = pos
		l.addDiags(diags)
		return nil, l.err()
	}
	return pos, nil
}

// collectPositions records where each attribute was written, keyed by the
// same dotted path that FieldError uses: `endpoint "core".address`.
func collectPositions(body *hclsyntax.Body, prefix string, pos map[string]hcl.Range) {
	for name, attr := range body.Attributes {
		pos[prefix+name] = attr.SrcRange
		// Map-valued attributes (e.g. default_ttl = { critical = "1h" })
		// record each key too.
		if obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr); ok {
			for _, item := range obj.Items {
				if k, diags := item.KeyExpr.Value(nil); !diags.HasErrors() && k.Type().FriendlyName() == "string" {
					pos[prefix+name+"."+k.AsString()] = item.ValueExpr.Range()
				}
			}
		}
	}
	for _, blk := range body.Blocks {
		p := blockPath(prefix, blk.Type, blk.Labels...)
		pos[p] = blk.DefRange()
		collectPositions(blk.Body, p+".", pos)
	}
}

func blockPath(prefix, typ string, labels ...string) string {
	p := prefix + typ
	for _, l := range labels {
		p += " " + strconv.Quote(l)
	}
	return p
}

// parseDuration reads a duration ("500ms", "5s", "72h", "30d", "2w":
// units.ParseDuration); "" keeps def.
func parseDuration(l *errorList, field string, s *string, def time.Duration) time.Duration {
	d, ok := parseValue(l, field, s, units.ParseDuration)
	if !ok {
		return def
	}
	if d < 0 {
		l.addf(field, "must not be negative, got %s", *s)
		return def
	}
	return d
}

// parseSize reads a size ("64KiB", "50GB": units.ParseSize); "" keeps def.
func parseSize(l *errorList, field string, s *string, def int64) int64 {
	if n, ok := parseValue(l, field, s, units.ParseSize); ok {
		return n
	}
	return def
}

// parseValue reads *s with parse; ok is false when s was not written (nil
// or "") or is bad, which it adds to l under field.
func parseValue[T any](l *errorList, field string, s *string, parse func(string) (T, error)) (v T, ok bool) {
	if s == nil || *s == "" {
		return v, false
	}
	v, err := parse(*s)
	if err != nil {
		l.add(field, err)
		return v, false
	}
	return v, true
}

// loadFile reads the config file at path with parse and resolves its
// relative paths against the file's directory; what ("agent", "core")
// names the config in errors.
func loadFile[C any, P interface {
	*C
	ResolvePaths(dir string)
}](what, path string, parse func(r io.Reader, filename string) (C, error)) (C, error) {
	var zero C
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("load %s config: %w", what, err)
	}
	defer f.Close()
	cfg, err := parse(f, path)
	if err != nil {
		return zero, err
	}
	dir, err := configDir(path)
	if err != nil {
		return zero, fmt.Errorf("load %s config: %w", what, err)
	}
	P(&cfg).ResolvePaths(dir)
	return cfg, nil
}

// configDir is the absolute directory of the config file at path, which
// its relative paths are relative to.
func configDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.Dir(abs), nil
}

// resolve returns p relative to dir when it is relative, else as it is.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func (t *TLS) resolve(dir string) {
	t.CA, t.Cert, t.Key = resolve(dir, t.CA), resolve(dir, t.Cert), resolve(dir, t.Key)
}

func pick[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
