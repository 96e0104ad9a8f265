package routes

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// The browser client (clients/js) is served under the API's mount point
// twice: at client.js, revalidated on every use by its ETag, and at
// client/<hash>.js, whose content never changes and may be cached for a
// year. The unversioned answer names the versioned path in a Link header
// (rel=preload would fetch it; rel=canonical only names it).
const (
	clientJSType       = "text/javascript; charset=utf-8"
	clientJSImmutable  = "public, max-age=31536000, immutable"
	clientJSRevalidate = "no-cache"
)

func (s *server) clientJS(c *gin.Context) {
	h := c.Writer.Header()
	etag := `"` + s.client.Hash + `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", clientJSRevalidate)
	h.Set("Link", "<"+s.clientVersioned+">; rel=canonical")
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, clientJSType, s.client.Source)
}

func (s *server) clientJSVersioned(c *gin.Context) {
	if c.Param("file") != s.client.Hash+".js" {
		// An old hash: the client changed. 404 rather than today's file
		// under yesterday's immutable name.
		s.writeError(c, errNotFound)
		return
	}
	h := c.Writer.Header()
	h.Set("ETag", `"`+s.client.Hash+`"`)
	h.Set("Cache-Control", clientJSImmutable)
	c.Data(http.StatusOK, clientJSType, s.client.Source)
}

// etagMatches is If-None-Match's weak comparison against one strong tag.
func etagMatches(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}
