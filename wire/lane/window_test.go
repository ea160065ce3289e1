package lane

import "testing"

func TestOpWindow(t *testing.T) {
	for _, c := range []struct {
		chunk int
		want  int64
	}{
		{64 << 10, 8 << 20},
		{1 << 20, 8 << 20},
		{4 << 20, 8<<20 + 2*4096},
		{16 << 20, 32<<20 + 2*4096},
	} {
		if got := OpWindow(c.chunk); got != c.want {
			t.Errorf("OpWindow(%d) = %d, want %d", c.chunk, got, c.want)
		}
		if got := OpWindow(c.chunk); got < 2*int64(c.chunk) {
			t.Errorf("OpWindow(%d) = %d holds fewer than two chunks", c.chunk, got)
		}
	}
}
