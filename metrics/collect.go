package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// desc is one metric the stats collector exposes.
type desc struct {
	*prometheus.Desc
	kind prometheus.ValueType
}

func newDesc(name, help string, kind prometheus.ValueType, labels ...string) desc {
	return desc{prometheus.NewDesc(namespace+"_"+name, help, labels, nil), kind}
}

// statsCollector turns the counters of cache, ratelimit, passhash, workq
// and bruteforce into metrics when Prometheus scrapes. Counters of those
// packages only grow, so they are exposed as counters.
type statsCollector struct {
	src  Sources
	list []desc

	cacheLookups, cacheFills, cacheInvalidations, cacheEvictions, cacheFlushes, cacheEntries, cacheTrusted desc
	outboxReads, outboxApplied, outboxGaps, outboxLastRead                                                 desc
	redisUp, redisMessages, redisResubscribes                                                              desc
	rlDecisions, rlMemoryKeys, rlEvictions, rlFallbacks, rlOutages, rlDegraded                             desc
	phInFlight, phSlots, phWaiting, phRejected                                                             desc
	wqPending, wqJobs                                                                                      desc
	mailPending, mailOldest                                                                                desc
	bfRefused, bfFailures, bfLocks, bfResets, bfErrors                                                     desc
}

func newStatsCollector(src Sources) *statsCollector {
	c := &statsCollector{src: src}
	add := func(d *desc, name, help string, kind prometheus.ValueType, labels ...string) {
		*d = newDesc(name, help, kind, labels...)
		c.list = append(c.list, *d)
	}
	C, G := prometheus.CounterValue, prometheus.GaugeValue
	if src.Cache != nil {
		add(&c.cacheLookups, "cache_lookups_total", "Verification cache lookups by result: hit, miss, or bypass (the cache was not trusted).", C, "result")
		add(&c.cacheFills, "cache_fills_total", "States read from the database offered to the cache, by result: stored, or refused (an invalidation overtook the read, or the cache was not trusted).", C, "result")
		add(&c.cacheInvalidations, "cache_invalidations_total", "Users invalidated in the cache.", C)
		add(&c.cacheEvictions, "cache_evictions_total", "Entries evicted to stay within cache.max_entries.", C)
		add(&c.cacheFlushes, "cache_flushes_total", "Whole-cache flushes (trust lost and regained, Redis resubscribed).", C)
		add(&c.cacheEntries, "cache_entries", "Users held in the cache.", G)
		add(&c.cacheTrusted, "cache_trusted", "1 while the cache is trusted (the outbox was read within cache.max_staleness), else 0.", G)
	}
	if src.Feed != nil {
		add(&c.outboxReads, "cache_outbox_reads_total", "Reads of the invalidation outbox, by result: ok or failed.", C, "result")
		add(&c.outboxApplied, "cache_outbox_applied_total", "Outbox rows applied to the cache.", C)
		add(&c.outboxGaps, "cache_outbox_gaps_total", "Outbox ids seen missing, by result: filled (found later) or abandoned (rolled back).", C, "result")
		add(&c.outboxLastRead, "cache_outbox_last_read_timestamp_seconds", "When the last successful outbox read began (Unix time); absent before the first.", G)
		add(&c.redisUp, "redis_subscription_up", "1 while the Redis invalidation subscription answers, else 0; absent without Redis.", G)
		add(&c.redisMessages, "redis_invalidations_total", "Invalidation messages through Redis, by event: received, published, publish_failed, publish_dropped.", C, "event")
		add(&c.redisResubscribes, "redis_subscriptions_total", "(Re)subscriptions to the Redis channel; each flushed the cache.", C)
	}
	if src.Limiter != nil {
		add(&c.rlDecisions, "ratelimit_decisions_total", "Rate limit decisions by rule and result: allowed or limited.", C, "rule", "result")
		add(&c.rlMemoryKeys, "ratelimit_memory_keys", "In-memory rate limit buckets held, by rule.", G, "rule")
		add(&c.rlEvictions, "ratelimit_memory_evictions_total", "In-memory buckets dropped before they were full again, by rule.", C, "rule")
		add(&c.rlFallbacks, "ratelimit_redis_fallbacks_total", "Decisions made in memory because Redis failed.", C)
		add(&c.rlOutages, "ratelimit_redis_outages_total", "Times Redis went from answering to failing.", C)
		add(&c.rlDegraded, "ratelimit_degraded", "1 while Redis is configured but failing (each instance counts alone), else 0.", G)
	}
	if src.Hasher != nil {
		add(&c.phInFlight, "passhash_in_flight", "bcrypt runs holding a slot now.", G)
		add(&c.phSlots, "passhash_slots", "bcrypt slots (password.max_concurrent_hashes).", G)
		add(&c.phWaiting, "passhash_waiting", "Calls waiting for a bcrypt slot now.", G)
		add(&c.phRejected, "passhash_rejected_total", "Calls refused after password.hash_queue_timeout (answered 503).", C)
	}
	if len(src.Queues) > 0 {
		add(&c.wqPending, "workq_pending", "Background jobs queued or running, by queue.", G, "queue")
		add(&c.wqJobs, "workq_jobs_total", "Background jobs by queue and result: done, failed, rejected (queue full) or dropped (at shutdown).", C, "queue", "result")
	}
	if src.MailQueue != nil {
		add(&c.mailPending, "mail_queue_messages", "Mail outbox messages queued or being sent (all instances).", G)
		add(&c.mailOldest, "mail_queue_oldest_age_seconds", "Age of the oldest mail outbox message queued or being sent; 0 when none.", G)
	}
	if src.BruteForce != nil {
		add(&c.bfRefused, "bruteforce_refused_total", "Password checks refused because the email was locked.", C)
		add(&c.bfFailures, "bruteforce_failures_total", "Failed password checks counted by the brute-force throttle.", C)
		add(&c.bfLocks, "bruteforce_locks_total", "Failed password checks after which the email was locked.", C)
		add(&c.bfResets, "bruteforce_resets_total", "Failure counts started over (a correct password, an admin unlock).", C)
		add(&c.bfErrors, "bruteforce_store_errors_total", "Calls the brute-force store could not answer (logins answered 503).", C)
	}
	return c
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.list {
		ch <- d.Desc
	}
}

func emit(ch chan<- prometheus.Metric, d desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d.Desc, d.kind, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Cache != nil {
		st := c.src.Cache()
		emit(ch, c.cacheLookups, float64(st.Hits), "hit")
		emit(ch, c.cacheLookups, float64(st.Misses), "miss")
		emit(ch, c.cacheLookups, float64(st.Bypasses), "bypass")
		emit(ch, c.cacheFills, float64(st.Fills), "stored")
		emit(ch, c.cacheFills, float64(st.Refused), "refused")
		emit(ch, c.cacheInvalidations, float64(st.Invalidations))
		emit(ch, c.cacheEvictions, float64(st.Evictions))
		emit(ch, c.cacheFlushes, float64(st.Flushes))
		emit(ch, c.cacheEntries, float64(st.Entries))
		emit(ch, c.cacheTrusted, b2f(st.Trusted))
	}
	if c.src.Feed != nil {
		h := c.src.Feed()
		emit(ch, c.outboxReads, float64(h.Reads), "ok")
		emit(ch, c.outboxReads, float64(h.Failures), "failed")
		emit(ch, c.outboxApplied, float64(h.Applied))
		emit(ch, c.outboxGaps, float64(h.GapsFilled), "filled")
		emit(ch, c.outboxGaps, float64(h.GapsAbandoned), "abandoned")
		if !h.LastRead.IsZero() {
			emit(ch, c.outboxLastRead, float64(h.LastRead.UnixNano())/1e9)
		}
		if r := h.Redis; r != nil {
			emit(ch, c.redisUp, b2f(r.Up))
			emit(ch, c.redisMessages, float64(r.Received), "received")
			emit(ch, c.redisMessages, float64(r.Published), "published")
			emit(ch, c.redisMessages, float64(r.PublishFailed), "publish_failed")
			emit(ch, c.redisMessages, float64(r.PublishDropped), "publish_dropped")
			emit(ch, c.redisResubscribes, float64(r.Resubscribes))
		}
	}
	if c.src.Limiter != nil {
		st := c.src.Limiter()
		rules := make([]string, 0, len(st.Rules))
		for name := range st.Rules {
			rules = append(rules, name)
		}
		slices.Sort(rules)
		for _, name := range rules {
			r := st.Rules[name]
			emit(ch, c.rlDecisions, float64(r.Allowed), name, "allowed")
			emit(ch, c.rlDecisions, float64(r.Limited), name, "limited")
			emit(ch, c.rlMemoryKeys, float64(r.MemoryKeys), name)
			emit(ch, c.rlEvictions, float64(r.Evicted), name)
		}
		emit(ch, c.rlFallbacks, float64(st.Fallbacks))
		emit(ch, c.rlOutages, float64(st.Outages))
		emit(ch, c.rlDegraded, b2f(st.Degraded))
	}
	if c.src.Hasher != nil {
		st := c.src.Hasher()
		emit(ch, c.phInFlight, float64(st.InFlight))
		emit(ch, c.phSlots, float64(st.Slots))
		emit(ch, c.phWaiting, float64(st.Waiting))
		emit(ch, c.phRejected, float64(st.Rejected))
	}
	if len(c.src.Queues) > 0 {
		names := make([]string, 0, len(c.src.Queues))
		for n := range c.src.Queues {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			st := c.src.Queues[n]()
			emit(ch, c.wqPending, float64(st.Pending), n)
			emit(ch, c.wqJobs, float64(st.Done), n, "done")
			emit(ch, c.wqJobs, float64(st.Failed), n, "failed")
			emit(ch, c.wqJobs, float64(st.Rejected), n, "rejected")
			emit(ch, c.wqJobs, float64(st.Dropped), n, "dropped")
		}
	}
	if c.src.MailQueue != nil {
		if n, age, err := c.src.MailQueue(); err == nil {
			emit(ch, c.mailPending, float64(n))
			emit(ch, c.mailOldest, age.Seconds())
		}
	}
	if c.src.BruteForce != nil {
		st := c.src.BruteForce()
		emit(ch, c.bfRefused, float64(st.Refused))
		emit(ch, c.bfFailures, float64(st.Failures))
		emit(ch, c.bfLocks, float64(st.Locks))
		emit(ch, c.bfResets, float64(st.Resets))
		emit(ch, c.bfErrors, float64(st.Errors))
	}
}
