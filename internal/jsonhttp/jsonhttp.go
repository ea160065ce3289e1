package jsonhttp

import "net/http"

// NonNil makes an empty list an empty array in JSON, never null.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Write writes b, one JSON document, as the answer with status, ending it
// with a newline. A failed write means the client has gone; there is no
// one left to tell.
func Write(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
