package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/revocable/authserver/models"
)

// Links are the paths, below mail.site_url, of the links in mails.
type Links struct {
	PasswordReset      string
	VerifyEmail        string
	EmailChangeConfirm string
}

// Options configure an Outbox.
type Options struct {
	// Keys seal bodies at rest: the active key first (it seals), then
	// keys that still open older bodies. 32 bytes each.
	Keys      [][]byte
	Templates *Templates
	// Sender delivers; required.
	Sender  Sender
	SiteURL string
	Links   Links
	// RetryDelay is the first retry's delay; each next one doubles, up
	// to MaxRetryDelay.
	RetryDelay  time.Duration
	MaxAttempts int
	// Retention is how long sent and failed rows are kept.
	Retention time.Duration
	// Workers is how many messages an instance sends at once.
	Workers int
	// Poll is how often an idle worker looks for due messages queued by
	// other instances or due for a retry (its own instance wakes it).
	Poll time.Duration
	// Lease is how long a claim holds a message before another worker
	// may take it (its worker is presumed dead).
	Lease time.Duration
	// SendTimeout bounds one delivery attempt.
	SendTimeout time.Duration
	Log         *slog.Logger
	// Observe, when set, counts each message's outcome (metrics).
	Observe func(k Kind, result string)
}

// MaxRetryDelay caps the backoff between attempts.
const MaxRetryDelay = time.Hour

// Draft is a message to queue.
type Draft struct {
	Kind Kind
	// To is the recipient: the account's stored address, never one a
	// client typed.
	To     string
	UserID uint64
	// Token, when set, goes into the kind's link (mail.links).
	Token string
	// NewEmail is shown by email_change_notice.
	NewEmail string
	// Context, when set, decorates the context of the delivery that
	// follows a preparation (the audit metadata of the request, so that
	// the sender's log lines name it).
	Context func(context.Context) context.Context
}

// Preparer makes the draft of a request queued with Request, inside the
// transaction tx that also stores the prepared message: what it creates
// (a reset token) and the message commit together. A nil draft drops the
// request (no such account, a cooldown): nothing is sent.
type Preparer func(ctx context.Context, tx *gorm.DB, to string, userID uint64, req []byte) (*Draft, error)

// Outbox is the durable mail queue and its worker.
type Outbox struct {
	db        *gorm.DB
	o         Options
	seal      *sealer
	preparers map[Kind]Preparer
	wake      chan struct{}
	log       *slog.Logger
}

// New builds the outbox over db (migrated by models.Migrate).
func New(db *gorm.DB, o Options) (*Outbox, error) {
	if o.Sender == nil || o.Templates == nil {
		return nil, errors.New("mail: a sender and templates are required")
	}
	s, err := newSealer(o.Keys)
	if err != nil {
		return nil, err
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Retention <= 0 {
		o.Retention = 720 * time.Hour
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 4*o.SendTimeout + time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Outbox{db: db, o: o, seal: s, preparers: map[Kind]Preparer{}, wake: make(chan struct{}, 1), log: o.Log}, nil
}

// Handle registers the preparer of requests of kind k. Call it before Run.
func (o *Outbox) Handle(k Kind, p Preparer) { o.preparers[k] = p }

// Sender is the transport in use.
func (o *Outbox) Sender() Sender { return o.o.Sender }

// Link is the link of kind k carrying token: mail.site_url, the kind's
// path, and the token as the query parameter "token".
func (o *Outbox) Link(k Kind, token string) string {
	var path string
	switch k {
	case PasswordReset:
		path = o.o.Links.PasswordReset
	case VerifyEmail:
		path = o.o.Links.VerifyEmail
	case EmailChangeConfirm:
		path = o.o.Links.EmailChangeConfirm
	default:
		return ""
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return strings.TrimSuffix(o.o.SiteURL, "/") + path + sep + "token=" + url.QueryEscape(token)
}

func checkRecipient(to string) error {
	if err := checkHeader("recipient", to); err != nil {
		return err
	}
	if n, err := models.NormalizeEmail(to); err != nil || n != to {
		return fmt.Errorf("%w: recipient %q is not a canonical address", ErrInvalidHeader, to)
	}
	return nil
}

// Queue renders d and writes it, sealed, in tx: the message commits or
// rolls back with what caused it. Call Notify after the commit.
func (o *Outbox) Queue(ctx context.Context, tx *gorm.DB, d Draft) error {
	row, err := o.prepared(d)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	row.Status, row.NextAttemptAt, row.CreatedAt, row.UpdatedAt = models.MailQueued, now, now, now
	if err := tx.WithContext(ctx).Create(row).Error; err != nil {
		return models.Unavailable("queue mail", err)
	}
	return nil
}

// prepared renders and seals d into a row (without times and status).
func (o *Outbox) prepared(d Draft) (*models.MailMessage, error) {
	if err := checkRecipient(d.To); err != nil {
		return nil, err
	}
	data := Data{Email: d.To, NewEmail: d.NewEmail, SiteURL: o.o.SiteURL}
	if d.Token != "" {
		data.Link = o.Link(d.Kind, d.Token)
	}
	c, err := o.o.Templates.Render(d.Kind, data)
	if err != nil {
		return nil, err
	}
	c.Token = d.Token
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &models.MailMessage{
		Kind: string(d.Kind), Recipient: d.To, UserID: d.UserID, Prepared: true,
		Body: o.seal.seal(plain, []byte(d.Kind)),
	}, nil
}

// Request writes, in tx, a request of kind k whose message a worker
// prepares (see Preparer) no sooner than delay from now. req is sealed
// too: it may carry what the audit trail records of the request.
func (o *Outbox) Request(ctx context.Context, tx *gorm.DB, k Kind, to string, req []byte, delay time.Duration) error {
	if err := checkRecipient(to); err != nil {
		return err
	}
	if _, ok := o.preparers[k]; !ok {
		return fmt.Errorf("mail: no preparer for %s", k)
	}
	now := time.Now().UTC()
	row := models.MailMessage{
		Kind: string(k), Recipient: to, Status: models.MailQueued, NextAttemptAt: now.Add(delay),
		Body: o.seal.seal(req, []byte("request:"+string(k))), CreatedAt: now, UpdatedAt: now,
	}
	if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
		return models.Unavailable("queue mail request", err)
	}
	return nil
}

// Notify wakes this instance's worker: a message was just committed.
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	ctx = models.Background(ctx)
	batch := o.batch()
	for {
		n, err := o.RunOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			o.log.Warn("mail outbox: claiming messages failed", "err", err)
		}
		if err == nil && n == batch {
			continue
		}
		wait := o.o.Poll
		if err == nil {
			if next, ok := o.nextDue(ctx); ok {
				if d := time.Until(next); d < wait {
					wait = max(d, time.Millisecond)
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func (o *Outbox) batch() int { return o.o.Workers * 4 }

// nextDue is when the earliest queued message is due.
func (o *Outbox) nextDue(ctx context.Context) (time.Time, bool) {
	var row models.MailMessage
	err := o.db.WithContext(ctx).Select("next_attempt_at").Where("status = ?", models.MailQueued).
		Order("next_attempt_at").Limit(1).Take(&row).Error
	if err != nil {
		return time.Time{}, false
	}
	return row.NextAttemptAt, true
}

// RunOnce claims the due messages (up to a batch) and delivers them,
// Workers at a time; it returns how many it claimed.
func (o *Outbox) RunOnce(ctx context.Context) (int, error) {
	msgs, err := o.claim(ctx, o.batch())
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, o.o.Workers)
	var wg sync.WaitGroup
	for i := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o.deliver(ctx, &msgs[i])
		})
	}
	wg.Wait()
	return len(msgs), nil
}

func newClaimID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// claim takes up to n due messages: queued ones whose time has come, and
// sending ones whose lease ran out. On MySQL/MariaDB and PostgreSQL the
// candidates are locked with FOR UPDATE SKIP LOCKED, so that workers on
// several instances take disjoint sets without waiting for each other;
// SQLite serializes writers, and the conditional update below is the
// claim: a row another worker took in between no longer matches it.
func (o *Outbox) claim(ctx context.Context, n int) ([]models.MailMessage, error) {
	now := time.Now().UTC()
	id := newClaimID()
	due := o.db.Where("(status = ? AND next_attempt_at <= ?) OR (status = ? AND lease_until < ?)",
		models.MailQueued, now, models.MailSending, now)
	lease := now.Add(o.o.Lease)
	claim := map[string]any{
		"status": models.MailSending, "claim_id": id, "lease_until": lease,
		"attempts": gorm.Expr("attempts + 1"), "updated_at": now,
	}
	var claimed int64
	var err error
	switch o.db.Dialector.Name() {
	case "mysql", "postgres":
		err = models.Tx(ctx, o.db, func(tx *gorm.DB) error {
			var ids []uint64
			q := tx.Model(&models.MailMessage{}).Where(due).Order("next_attempt_at").Limit(n).
				Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
			if err := q.Pluck("id", &ids).Error; err != nil {
				return models.Unavailable("find due mail", err)
			}
			if len(ids) == 0 {
				return nil
			}
			res := tx.Model(&models.MailMessage{}).Where("id IN ?", ids).Updates(claim)
			if res.Error != nil {
				return models.Unavailable("claim mail", res.Error)
			}
			claimed = res.RowsAffected
			return nil
		})
	default:
		// No transaction: the update is one statement that takes
		// SQLite's write lock at once (a read upgraded to a write inside
		// a transaction fails with SQLITE_BUSY when another process
		// wrote), and its condition is the claim: a row another worker
		// took in between no longer matches it.
		// A read first: an idle worker takes no write lock, which on
		// SQLite would make other connections' transactions retry.
		var ids []uint64
		if err := o.db.WithContext(ctx).Model(&models.MailMessage{}).Where(due).Order("next_attempt_at").Limit(n).Pluck("id", &ids).Error; err != nil {
			return nil, models.Unavailable("find due mail", err)
		}
		if len(ids) == 0 {
			return nil, nil
		}
		res := o.db.WithContext(ctx).Model(&models.MailMessage{}).Where("id IN ?", ids).Where(due).Updates(claim)
		if res.Error != nil {
			err = models.Unavailable("claim mail", res.Error)
		}
		claimed = res.RowsAffected
	}
	if err != nil || claimed == 0 {
		return nil, err
	}
	var msgs []models.MailMessage
	if err := o.db.WithContext(ctx).Where("claim_id = ? AND status = ?", id, models.MailSending).Order("id").Find(&msgs).Error; err != nil {
		return nil, models.Unavailable("read claimed mail", err)
	}
	return msgs, nil
}

var errDropped = errors.New("mail request dropped")

// content opens m's body, preparing it first if it is a request.
func (o *Outbox) content(ctx context.Context, m *models.MailMessage) (*Content, func(context.Context) context.Context, error) {
	var decorate func(context.Context) context.Context
	if !m.Prepared {
		var err error
		if decorate, err = o.prepare(ctx, m); err != nil {
			return nil, nil, err
		}
	}
	plain, err := o.seal.open(m.Body, []byte(m.Kind))
	if err != nil {
		return nil, nil, Permanent(err)
	}
	var c Content
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, nil, Permanent(fmt.Errorf("mail: body does not decode: %w", err))
	}
	return &c, decorate, nil
}

// errLostClaim: another worker took the message (this one's lease ran
// out); it is left to that worker.
var errLostClaim = errors.New("mail: claim lost")

func (o *Outbox) prepare(ctx context.Context, m *models.MailMessage) (func(context.Context) context.Context, error) {
	p, ok := o.preparers[Kind(m.Kind)]
	if !ok {
		return nil, Permanent(fmt.Errorf("mail: no preparer for %s", m.Kind))
	}
	req, err := o.seal.open(m.Body, []byte("request:"+m.Kind))
	if err != nil {
		return nil, Permanent(err)
	}
	var decorate func(context.Context) context.Context
	var row *models.MailMessage
	dropped := false
	err = models.Tx(ctx, o.db, func(tx *gorm.DB) error {
		row, dropped = nil, false
		d, err := p(ctx, tx, m.Recipient, m.UserID, req)
		if err != nil {
			return err
		}
		if d == nil {
			res := tx.Where("id = ? AND claim_id = ?", m.ID, m.ClaimID).Delete(&models.MailMessage{})
			if res.Error != nil {
				return models.Unavailable("drop mail request", res.Error)
			}
			if res.RowsAffected != 1 {
				return errLostClaim
			}
			dropped = true
			return nil
		}
		decorate = d.Context
		if row, err = o.prepared(*d); err != nil {
			return Permanent(err)
		}
		res := tx.Model(&models.MailMessage{}).Where("id = ? AND claim_id = ?", m.ID, m.ClaimID).Updates(map[string]any{
			"recipient": row.Recipient, "user_id": row.UserID, "prepared": true, "body": row.Body, "updated_at": time.Now().UTC(),
		})
		if res.Error != nil {
			return models.Unavailable("store prepared mail", res.Error)
		}
		if res.RowsAffected != 1 {
			return errLostClaim
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dropped {
		return nil, errDropped
	}
	m.Recipient, m.UserID, m.Prepared, m.Body = row.Recipient, row.UserID, true, row.Body
	return decorate, nil
}

func (o *Outbox) observe(k, result string) {
	if o.o.Observe != nil {
		o.o.Observe(Kind(k), result)
	}
}

// deliver sends one claimed message and records the outcome.
func (o *Outbox) deliver(ctx context.Context, m *models.MailMessage) {
	if ctx.Err() != nil {
		o.release(m)
		return
	}
	c, decorate, err := o.content(ctx, m)
	switch {
	case errors.Is(err, errDropped):
		o.observe(m.Kind, "dropped")
		return
	case errors.Is(err, errLostClaim):
		return
	case err != nil:
		o.finish(ctx, m, err, nil)
		return
	}
	msg := &Message{ID: m.ID, Kind: Kind(m.Kind), To: m.Recipient, Subject: c.Subject, Text: c.Text, HTML: c.HTML, Link: c.Link, Token: c.Token}
	sctx := ctx
	if decorate != nil {
		sctx = decorate(sctx)
	}
	sctx, cancel := context.WithTimeout(sctx, o.o.SendTimeout)
	err = o.o.Sender.Send(sctx, msg)
	cancel()
	if ctx.Err() != nil && err != nil {
		// Shutting down: the message goes back to the queue for another
		// worker, or this one after a restart.
		o.release(m)
		return
	}
	o.finish(ctx, m, err, c)
}

// release gives a claimed message back to the queue, due now, without
// counting the attempt (a worker shutting down). If that fails, the lease
// runs out instead.
func (o *Outbox) release(m *models.MailMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	err := o.db.WithContext(ctx).Model(&models.MailMessage{}).Where("id = ? AND claim_id = ?", m.ID, m.ClaimID).Updates(map[string]any{
		"status": models.MailQueued, "claim_id": "", "lease_until": nil, "next_attempt_at": now,
		"attempts": gorm.Expr("attempts - 1"), "updated_at": now,
	}).Error
	if err != nil {
		o.log.Warn("mail outbox: releasing a claim at shutdown failed; its lease will run out", "id", m.ID, "err", err)
	}
}

// scrub makes an error safe to store and log: no token, no link, one
// line, bounded.
func scrub(err error, c *Content) string {
	s := err.Error()
	if c != nil {
		if c.Token != "" {
			s = strings.ReplaceAll(s, c.Token, "[token]")
		}
		if c.Link != "" {
			s = strings.ReplaceAll(s, c.Link, "[link]")
		}
	}
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	return models.Truncate(s, 500)
}

// finish records the outcome of an attempt: sent, retried later with
// backoff, or failed (permanent, or out of attempts). A sent or failed
// message loses its body.
func (o *Outbox) finish(ctx context.Context, m *models.MailMessage, sendErr error, c *Content) {
	now := time.Now().UTC()
	ctx = context.WithoutCancel(ctx)
	up := map[string]any{"claim_id": "", "lease_until": nil, "updated_at": now}
	result := "sent"
	var msgErr string
	switch {
	case sendErr == nil:
		up["status"], up["body"], up["sent_at"], up["last_error"] = models.MailSent, nil, now, ""
	case IsPermanent(sendErr) || m.Attempts >= o.o.MaxAttempts:
		msgErr = scrub(sendErr, c)
		up["status"], up["body"], up["last_error"] = models.MailFailed, nil, msgErr
		result = "failed"
	default:
		msgErr = scrub(sendErr, c)
		up["status"], up["last_error"] = models.MailQueued, msgErr
		up["next_attempt_at"] = now.Add(o.backoff(m.Attempts))
		result = "retried"
	}
	res := o.db.WithContext(ctx).Model(&models.MailMessage{}).Where("id = ? AND claim_id = ?", m.ID, m.ClaimID).Updates(up)
	if res.Error != nil {
		// The lease runs out and the message is sent again: at least once.
		o.log.Warn("mail outbox: recording a delivery failed", "id", m.ID, "kind", m.Kind, "err", res.Error)
		return
	}
	o.observe(m.Kind, result)
	if msgErr != "" {
		o.log.Warn("mail delivery "+result, "id", m.ID, "kind", m.Kind, "attempts", m.Attempts, "err", msgErr)
	}
}

// backoff is the delay after the attempts-th failed attempt.
func (o *Outbox) backoff(attempts int) time.Duration {
	d := o.o.RetryDelay
	for i := 1; i < attempts && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// Drain delivers until no message is in flight or due within the next
// moment (tests, and a server that wants its mail out before it stops).
// Messages waiting for a retry later are left.
func (o *Outbox) Drain(ctx context.Context) error {
	for {
		if _, err := o.RunOnce(ctx); err != nil {
			return err
		}
		var n int64
		soon := time.Now().UTC().Add(250 * time.Millisecond)
		err := o.db.WithContext(ctx).Model(&models.MailMessage{}).
			Where("status = ? OR (status = ? AND next_attempt_at <= ?)", models.MailSending, models.MailQueued, soon).Count(&n).Error
		if err != nil {
			return models.Unavailable("count pending mail", err)
		}
		if n == 0 {
			return nil
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Prune deletes sent and failed messages older than mail.retention.
func (o *Outbox) Prune(ctx context.Context) (int64, error) {
	cut := time.Now().UTC().Add(-o.o.Retention)
	res := o.db.WithContext(ctx).Where("status IN ? AND updated_at < ?", []string{models.MailSent, models.MailFailed}, cut).Delete(&models.MailMessage{})
	if res.Error != nil {
		return 0, models.Unavailable("prune mail", res.Error)
	}
	return res.RowsAffected, nil
}

// QueueStats describe the messages waiting.
type QueueStats struct {
	Queued  int64
	Sending int64
	Failed  int64
	// OldestAge is the age of the oldest queued or sending message.
	OldestAge time.Duration
}

// Stats reads the queue's state.
func (o *Outbox) Stats(ctx context.Context) (QueueStats, error) {
	var rows []struct {
		Status string
		N      int64
	}
	var st QueueStats
	if err := o.db.WithContext(ctx).Model(&models.MailMessage{}).Select("status, count(*) AS n").Group("status").Scan(&rows).Error; err != nil {
		return st, models.Unavailable("mail stats", err)
	}
	for _, r := range rows {
		switch r.Status {
		case models.MailQueued:
			st.Queued = r.N
		case models.MailSending:
			st.Sending = r.N
		case models.MailFailed:
			st.Failed = r.N
		}
	}
	if st.Queued+st.Sending > 0 {
		var m models.MailMessage
		if err := o.db.WithContext(ctx).Select("created_at").Where("status IN ?", []string{models.MailQueued, models.MailSending}).Order("created_at").Limit(1).Take(&m).Error; err == nil {
			st.OldestAge = time.Since(m.CreatedAt)
		}
	}
	return st, nil
}

// List reads the newest messages, without bodies; status "" means all.
func List(ctx context.Context, db *gorm.DB, status string, limit int) ([]models.MailMessage, error) {
	q := db.WithContext(ctx).Omit("body").Order("id DESC").Limit(limit)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var out []models.MailMessage
	if err := q.Find(&out).Error; err != nil {
		return nil, models.Unavailable("list mail", err)
	}
	return out, nil
}
