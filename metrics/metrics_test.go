package metrics

import (
	"testing"
	"time"
)

// TestHotPathAllocatesNothing pins the promise of the package doc: once a
// route's series exist, counting a request and its outcome allocates
// nothing (the verify path is the server's hottest).
func TestHotPathAllocatesNothing(t *testing.T) {
	m := New(Info{Strategy: "password_key", Driver: "sqlite"})
	m.Request("GET", "/api/v1/auth/verify", 200, time.Millisecond)
	cases := map[string]func(){
		"request":      func() { m.Request("GET", "/api/v1/auth/verify", 200, 150*time.Microsecond) },
		"verification": func() { m.Verification(VerifyOK) },
		"login":        func() { m.Login(LoginInvalidCredentials) },
		"refresh":      func() { m.Refresh(RefreshReused) },
		"revocation":   func() { m.Revocation(RevokeAdmin) },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, fn); n != 0 {
				t.Fatalf("%v allocations per call", n)
			}
		})
	}
}

// TestNilRecordsNothing: a server with metrics off holds a nil *Metrics.
func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Request("GET", "/", 200, time.Second)
	m.Login(LoginSuccess)
	m.Verification(VerifyOK)
	m.Refresh(RefreshOK)
	m.Revocation(RevokeLogout)
	if err := m.Watch(Sources{}); err != nil {
		t.Fatal(err)
	}
}

// TestMethodsAreBounded: a client cannot mint series with made-up
// methods.
func TestMethodsAreBounded(t *testing.T) {
	m := New(Info{})
	for _, method := range []string{"BREW", "PROPFIND", "get", "X-" + string(rune('a'))} {
		m.Request(method, NoRoute, 404, time.Millisecond)
	}
	if n := len(*m.routes.Load()); n != 1 {
		t.Fatalf("%d series for four unknown methods, want 1 (OTHER)", n)
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New(Info{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("GET", "/api/v1/auth/verify", 200, 150*time.Microsecond)
			m.Verification(VerifyOK)
		}
	})
}
