package routes

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/audit"
)

// Bounds of GET /me/events?limit=N.
const (
	defaultEventsLimit = 50
	maxEventsLimit     = 200
)

// eventJSON is one event as the account's owner sees it.
type eventJSON struct {
	Time      time.Time `json:"time"`
	Action    string    `json:"action"`
	Result    string    `json:"result"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
}

// myEvents answers the caller's own audit events, newest first: logins
// (failed ones too), refreshes, revocations, password changes, admin
// actions on the account. Nobody else's: the query is by the verified
// caller's id.
func (s *server) myEvents(c *gin.Context) error {
	limit, err := eventsLimit(c)
	if err != nil {
		return err
	}
	evs, err := audit.List(c.Request.Context(), s.db, principal(c).UserID, limit)
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = eventJSON{Time: e.CreatedAt.UTC(), Action: e.Action, Result: e.Result, IP: e.IP, UserAgent: e.UserAgent}
	}
	c.JSON(http.StatusOK, gin.H{"events": out})
	return nil
}

// eventsLimit reads ?limit=N: 1 to maxEventsLimit, given at most once;
// absent means defaultEventsLimit.
func eventsLimit(c *gin.Context) (int, error) {
	vals, ok := c.GetQueryArray("limit")
	if !ok {
		return defaultEventsLimit, nil
	}
	bad := invalidRequest("limit must be a whole number from 1 to " + strconv.Itoa(maxEventsLimit))
	if len(vals) != 1 || len(vals[0]) > 3 {
		return 0, bad
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 || n > maxEventsLimit {
		return 0, bad
	}
	return n, nil
}
