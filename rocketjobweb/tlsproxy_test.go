package rocketjobweb_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestBehindTLSProxy: a handler served over plain HTTP to a proxy that
// terminates TLS marks its session cookie Secure and sends HSTS when told
// it is behind one, and not otherwise (a Secure cookie over plain HTTP
// would never come back).
func TestBehindTLSProxy(t *testing.T) {
	for _, proxy := range []bool{false, true} {
		b := setup(t, options{auth: true, tlsProxy: proxy})
		form := url.Values{"user": {""}, "password": {testToken}, "next": {"/jobs"}}
		r := b.do(t, req{method: "POST", path: "/login", body: strings.NewReader(form.Encode()), ctype: "application/x-www-form-urlencoded", header: map[string]string{"Origin": b.ts.URL}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("proxy %v: login: %d %s", proxy, r.status, r.body)
		}
		var secure, found bool
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "rocketjob_session" {
				found, secure = true, c.Secure
			}
		}
		if !found {
			t.Fatalf("proxy %v: no session cookie: %v", proxy, r.header)
		}
		if secure != proxy {
			t.Errorf("proxy %v: session cookie Secure = %v", proxy, secure)
		}
		if hsts := r.header.Get("Strict-Transport-Security") != ""; hsts != proxy {
			t.Errorf("proxy %v: Strict-Transport-Security sent: %v", proxy, hsts)
		}
	}
}
