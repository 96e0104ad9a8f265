package routes_test

import (
	"net/http"
	"testing"
)

func TestLoginVerifyEveryStrategy(t *testing.T) {
	matrix(t, func(t *testing.T, driver, name string) {
		e := newEnv(t, driver, name)
		e.register(email(1))
		s := e.login(email(1), "laptop")
		e.wantVerify("fresh login", s.access, http.StatusOK)
		e.do(http.StatusNoContent, req{method: "POST", path: "/api/v1/auth/logout", token: s.access})
		want := http.StatusOK
		if e.caps().LogoutThisDevice {
			want = http.StatusUnauthorized
		}
		e.wantVerify("after logout", s.access, want)
	})
}
