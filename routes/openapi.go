package routes

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPI serves the OpenAPI document of the API (package apidoc),
// converted to JSON once, by New.
func (s *server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.openapi)
}
