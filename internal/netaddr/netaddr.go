// Package netaddr holds the small address checks shared by the listeners of
// the embedded database and of the web UI.
package netaddr

import (
	"net"
	"strings"
)

// IsLoopback reports whether the listen address host:port binds only the
// loopback interface: "localhost" or a loopback IP (127.0.0.0/8, ::1). An
// empty host (all interfaces), a wildcard address or any other name or
// address is not loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
