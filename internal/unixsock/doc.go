// Package unixsock creates the unix sockets of the agent's control API and
// the core's admin API: sockets only their owner may connect to, from the
// first instant anyone can reach them.
//
// Listen binds the socket under a temporary name inside a fresh directory
// of mode 0700 beside the final path (so no other user can reach it while
// its mode is still the umask's), sets mode 0600, and links it into place
// without replacing anything that appeared meanwhile. A socket file left at
// the path by a crashed process (nothing accepts on it) is replaced; a live
// one is refused with ErrInUse, and a path that is not a socket with
// ErrNotSocket. The Listener's Close removes the socket file, unless
// another process has put its own there since.
//
// # Caveats
//
//   - Unix only; the path must fit a sockaddr_un (about 100 bytes).
//   - A socket whose listener is alive but not accepting (a stopped
//     process) still counts as live: connecting succeeds.
//   - A process killed inside Listen may leave an empty ".sock-*"
//     directory beside the socket path; it is harmless and not swept.
package unixsock
