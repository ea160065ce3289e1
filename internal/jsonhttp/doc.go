// Package jsonhttp holds what the agent's control API (agent/control), the
// core's admin API (core/admin) and the CLI's --json output write alike:
// lists as [] and never null, and a JSON answer's status, content type and
// body.
package jsonhttp
