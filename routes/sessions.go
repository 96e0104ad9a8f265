package routes

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

func (s *server) listSessions(c *gin.Context) error {
	p := principal(c)
	devs, err := s.tokens.Devices(c.Request.Context(), p)
	if err != nil {
		return err
	}
	out := make([]gin.H, len(devs))
	for i, d := range devs {
		out[i] = gin.H{
			"id": d.ID, "device_name": d.Name, "user_agent": d.UserAgent, "ip": d.IP,
			"created_at": d.CreatedAt.UTC(), "last_seen_at": d.LastSeenAt.UTC(), "current": d.ID == p.LoginID,
		}
	}
	c.JSON(http.StatusOK, gin.H{"sessions": out})
	return nil
}

func (s *server) revokeSession(c *gin.Context) error {
	if err := s.tokens.RevokeDevice(s.ctx(c), principal(c), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
