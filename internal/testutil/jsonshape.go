package testutil

import (
	"encoding"
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// snakeCase is what every JSON key of edge-sync's answers looks like.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// CheckJSONNames fails tb for every JSON key of v's type, and of the types
// it holds, that is not snake_case: the struct fields' names as
// encoding/json writes them, and the keys a custom MarshalJSON writes for
// a zero value. Map keys are data, not names, and are not checked.
func CheckJSONNames(tb testing.TB, v any) {
	tb.Helper()
	var bad []string
	walkNames(reflect.TypeOf(v), reflect.TypeOf(v).String(), map[reflect.Type]bool{}, &bad)
	sort.Strings(bad)
	for _, b := range bad {
		tb.Errorf("JSON key not in snake_case: %s", b)
	}
}

func walkNames(t reflect.Type, path string, seen map[reflect.Type]bool, bad *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[t] {
		return
	}
	seen[t] = true
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
		b, err := json.Marshal(reflect.New(t).Interface())
		if err != nil {
			return // a zero value it cannot write says nothing about its keys
		}
		var doc any
		if json.Unmarshal(b, &doc) == nil {
			walkDoc(doc, path, bad)
		}
		return
	}
	if t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return // a string in JSON
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, inline, ok := jsonKey(f)
			if !ok {
				continue
			}
			if inline {
				walkNames(f.Type, path, seen, bad)
				continue
			}
			if !snakeCase.MatchString(name) {
				*bad = append(*bad, path+"."+name)
			}
			walkNames(f.Type, path+"."+name, seen, bad)
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		walkNames(t.Elem(), path+"[]", seen, bad)
	}
}

// jsonKey returns the key encoding/json writes field f under (its name
// when the tag gives none) and the tag's options; inline says f is an
// embedded struct without a name of its own, whose fields encoding/json
// writes in place of it; ok is false for a field it does not write
// (unexported, or tagged "-").
func jsonKey(f reflect.StructField) (name, opts string, inline, ok bool) {
	if !f.IsExported() {
		return "", "", false, false
	}
	name, opts, _ = strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return "", "", false, false
	}
	if name == "" {
		return f.Name, opts, f.Anonymous, true
	}
	return name, opts, false, true
}

// walkDoc checks the keys of a decoded JSON document.
func walkDoc(doc any, path string, bad *[]string) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if !snakeCase.MatchString(k) {
				*bad = append(*bad, path+"."+k)
			}
			walkDoc(v, path+"."+k, bad)
		}
	case []any:
		for _, v := range d {
			walkDoc(v, path+"[]", bad)
		}
	}
}

// CheckNoNullLists fails tb for every list in v that encoding/json would
// write as null: a nil slice (but []byte, written as a string) in a field
// without omitempty. An empty list is [] in every answer.
func CheckNoNullLists(tb testing.TB, v any) {
	tb.Helper()
	var bad []string
	walkNulls(reflect.ValueOf(v), reflect.TypeOf(v).String(), &bad)
	for _, b := range bad {
		tb.Errorf("nil list, written as null: %s", b)
	}
}

func walkNulls(v reflect.Value, path string, bad *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkNulls(v.Elem(), path, bad)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, opts, _, ok := jsonKey(t.Field(i))
			if !ok {
				continue
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Slice && fv.IsNil() && fv.Type().Elem().Kind() != reflect.Uint8 && !strings.Contains(opts, "omitempty") {
				*bad = append(*bad, path+"."+name)
				continue
			}
			walkNulls(fv, path+"."+name, bad)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkNulls(v.Index(i), path+"[]", bad)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walkNulls(v.MapIndex(k), path+"[]", bad)
		}
	}
}
