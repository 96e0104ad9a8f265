package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timings of the Redis link.
const (
	// pingEvery is how often the link publishes a heartbeat on a channel
	// of its own and expects it back on its subscription. go-redis's own
	// health check only writes its PING and never checks that the PONG
	// came back, so a hung Redis (CLIENT PAUSE) would raise no error; and
	// a PING answered on the subscription proves only that its own
	// connection lives. Under Sentinel, go-redis does not move a live
	// subscription after a failover: it would stay on the demoted master,
	// answering pings while the messages, published on the new master,
	// never reach it. The heartbeat goes where publishes go (the master
	// the client knows now) and comes back only through a subscription
	// that hears them, so the watermark catches both.
	pingEvery = 500 * time.Millisecond
	// deadAfter without a heartbeat back, the subscription is closed and
	// made again (on the master the client knows by then).
	deadAfter = 3 * pingEvery
	// publishTimeout bounds one PUBLISH.
	publishTimeout = 250 * time.Millisecond
	// publishQueue is how many invalidations may wait for Redis; beyond
	// it they are dropped (the outbox still carries them).
	publishQueue = 4096
)

// redisLink publishes invalidations after commit and applies those of the
// other instances.
type redisLink struct {
	rdb     *redis.Client
	channel string
	// echo is this link's own heartbeat channel: no other instance
	// subscribes to it.
	echo   string
	target Target
	log    *slog.Logger
	queue  chan string

	lastPong                                                      atomic.Int64
	received, published, publishFailed, dropped, resubscribes, up atomic.Uint64
}

func newRedisLink(rdb *redis.Client, channel string, target Target, log *slog.Logger) *redisLink {
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	return &redisLink{
		rdb: rdb, channel: channel, echo: channel + ":echo:" + hex.EncodeToString(nonce),
		target: target, log: log, queue: make(chan string, publishQueue),
	}
}

func (l *redisLink) publish(uid uint64, rev int64) {
	select {
	case l.queue <- encode(uid, rev):
	default:
		l.dropped.Add(1)
	}
}

func (l *redisLink) run(ctx context.Context) {
	go l.publisher(ctx)
	for ctx.Err() == nil {
		l.subscribe(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publisher sends queued invalidations, each under a short deadline.
func (l *redisLink) publisher(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-l.queue:
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			err := l.rdb.Publish(pctx, l.channel, msg).Err()
			cancel()
			if err != nil {
				l.publishFailed.Add(1)
				if !failing {
					l.log.Warn("cache: publishing an invalidation to Redis failed; other instances learn it from the outbox", "err", err)
				}
				failing = true
				continue
			}
			l.published.Add(1)
			failing = false
		}
	}
}

// subscribe holds one subscription until it dies. Every (re)subscription
// flushes the cache: messages published while it was down are lost.
// Messages are read with Receive rather than Channel() so that every
// reconnect is seen.
func (l *redisLink) subscribe(ctx context.Context) {
	ps := l.rdb.Subscribe(ctx, l.channel, l.echo)
	defer ps.Close()
	defer l.up.Store(0)
	lastPong := time.Now()
	var n uint64
	nextPing := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastPong) > deadAfter {
			if l.up.Load() == 1 {
				l.log.Warn("cache: Redis subscription hears no heartbeat; reconnecting (the outbox keeps the cache exact meanwhile)")
			}
			return
		}
		if now := time.Now(); !now.Before(nextPing) {
			n++
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			// A failed publish is a missing heartbeat: the watermark decides.
			_ = l.rdb.Publish(pctx, l.echo, strconv.FormatUint(n, 10)).Err()
			cancel()
			nextPing = now.Add(pingEvery)
		}
		msg, err := ps.ReceiveTimeout(ctx, time.Until(nextPing)+time.Millisecond)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				// Down, not just quiet: do not spin on failed dials.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == l.channel {
				l.resubscribes.Add(1)
				l.target.Flush()
				lastPong = time.Now()
				l.pong(lastPong)
				if l.up.Swap(1) == 0 {
					l.log.Info("cache: subscribed to Redis invalidations; cache flushed")
				}
			}
		case *redis.Message:
			if m.Channel == l.echo {
				lastPong = time.Now()
				l.pong(lastPong)
				l.up.Store(1)
				continue
			}
			uid, rev, err := decode(m.Payload)
			if err != nil {
				l.log.Warn("cache: ignoring a malformed invalidation message", "err", err)
				continue
			}
			l.received.Add(1)
			l.target.Invalidate(uid, rev)
		}
	}
}

func (l *redisLink) pong(t time.Time) { l.lastPong.Store(t.UnixNano()) }

func (l *redisLink) health() RedisHealth {
	h := RedisHealth{
		Up:       l.up.Load() == 1 && time.Since(time.Unix(0, l.lastPong.Load())) <= deadAfter,
		Received: l.received.Load(), Published: l.published.Load(), PublishFailed: l.publishFailed.Load(),
		PublishDropped: l.dropped.Load(), Resubscribes: l.resubscribes.Load(),
	}
	if t := l.lastPong.Load(); t != 0 {
		h.LastPong = time.Unix(0, t)
	}
	return h
}
