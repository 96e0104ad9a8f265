package authserver

import (
	"io"
	"sync"
	"time"
)

// LogWriter buffers log lines and writes them out every flushEvery, or
// sooner when the buffer fills, so that the one log line of every request
// does not cost a write system call on the request path. Lines written
// before Close are all written out; what is lost in a crash is at most
// the last flushEvery of logs.
type LogWriter struct {
	mu   sync.Mutex
	out  io.Writer
	buf  []byte
	stop chan struct{}
	done chan struct{}
}

const (
	flushEvery   = 100 * time.Millisecond
	flushAtBytes = 64 << 10
)

// NewLogWriter starts a LogWriter in front of out. Close it to flush.
func NewLogWriter(out io.Writer) *LogWriter {
	w := &LogWriter{out: out, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// Write buffers p, one whole log line (slog hands every record to one
// Write).
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) >= flushAtBytes {
		w.flushLocked()
	}
	return len(p), nil
}

func (w *LogWriter) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	// A failing log sink has nowhere to report to; the lines are dropped.
	_, _ = w.out.Write(w.buf)
	w.buf = w.buf[:0]
}

// Flush writes out what is buffered.
func (w *LogWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

func (w *LogWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			w.Flush()
			return
		case <-t.C:
			w.Flush()
		}
	}
}

// Close flushes and stops the writer.
func (w *LogWriter) Close() error {
	close(w.stop)
	<-w.done
	return nil
}
