package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Write writes the report in the format: table (aligned text), markdown (a
// GitHub table), json (the Report schema) or html (a self-contained page
// with charts).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		return r.writeMarkdown(w)
	case "html":
		return r.writeHTML(w)
	case "table", "":
		return r.writeTable(w)
	default:
		return fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(Formats, ", "))
	}
}

// section is a titled part of the grid.
type section struct {
	title string
	rows  [][]string
}

// grid is the report as rows of cells: a header, then the guarantees, the
// costs and the invalidation costs.
func (r *Report) grid() (header []string, sections []section) {
	header = append([]string{"guarantee"}, r.Strategies...)
	gs := section{title: "guarantee"}
	for _, g := range r.Guarantees {
		row := []string{g.Title}
		for _, s := range r.Strategies {
			row = append(row, string(g.Cells[s]))
		}
		gs.rows = append(gs.rows, row)
	}
	cs := section{title: "cost"}
	for _, c := range r.Costs {
		row := []string{c.Title + " (" + c.Unit + ")"}
		for _, s := range r.Strategies {
			row = append(row, formatValue(c.Values[s], c.Unit))
		}
		cs.rows = append(cs.rows, row)
	}
	is := section{title: "invalidation: DB writes / outbox messages"}
	for _, c := range r.Invalidation {
		row := []string{c.Title}
		for _, s := range r.Strategies {
			row = append(row, invalidationCell(c.Writes[s], c.Messages[s]))
		}
		is.rows = append(is.rows, row)
	}
	return header, []section{gs, cs, is}
}

func formatValue(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if unit == "×" {
		s += "×"
	}
	return s
}

// invalidationCell is "writes / messages", or 501 for a request the
// strategy does not support.
func invalidationCell(writes, messages *int64) string {
	if writes == nil || messages == nil {
		return "501"
	}
	return fmt.Sprintf("%d / %d", *writes, *messages)
}

func (r *Report) title() string {
	return fmt.Sprintf("authserver compare: %s, %s, %d CPUs, %s; %d sequential verify requests and %d concurrent clients for %s per server",
		r.Driver, r.Go, r.CPUs, r.GeneratedAt.Format("2006-01-02 15:04:05Z07:00"),
		r.Requests, r.Clients, time.Duration(r.DurationMS)*time.Millisecond)
}

func (r *Report) writeTable(w io.Writer) error {
	header, sections := r.grid()
	widths := make([]int, len(header))
	measure := func(row []string) {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	measure(header)
	for _, sec := range sections {
		measure([]string{sec.title})
		for _, row := range sec.rows {
			measure(row)
		}
	}
	var b strings.Builder
	line := func(row []string) {
		var l strings.Builder
		for i, cell := range row {
			if i > 0 {
				l.WriteString("  ")
			}
			l.WriteString(cell + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)))
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	b.WriteString(r.title() + "\n")
	for _, sec := range sections {
		b.WriteString("\n")
		h := slices.Clone(header)
		h[0] = sec.title
		line(h)
		for _, row := range sec.rows {
			line(row)
		}
	}
	b.WriteString("\n")
	r.writeFooter(&b, "")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeMarkdown(w io.Writer) error {
	header, sections := r.grid()
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for _, cell := range row {
			b.WriteString(" " + strings.ReplaceAll(cell, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString(r.title() + "\n\n")
	line(header)
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for i, sec := range sections {
		if i > 0 {
			row := make([]string, len(header))
			row[0] = "**" + sec.title + "**"
			line(row)
		}
		for _, row := range sec.rows {
			line(row)
		}
	}
	b.WriteString("\n")
	r.writeFooter(&b, "- ")
	_, err := io.WriteString(w, b.String())
	return err
}

// readsLine says what a verification reads with the cache off.
func (r *Report) readsLine() string {
	var parts []string
	for _, s := range r.Strategies {
		t := strings.Join(r.VerifyReads[s], ", ")
		if t == "" {
			t = "nothing"
		}
		parts = append(parts, s+": "+t)
	}
	return "Tables a verification reads with the cache off: " + strings.Join(parts, "; ") + "."
}

// writeFooter lists the mismatches, what a verification reads and the
// notes.
func (r *Report) writeFooter(b *strings.Builder, bullet string) {
	if len(r.Mismatches) == 0 {
		b.WriteString("Mismatches: none: every strategy does what GET /api/v1/strategy claims and what the scenario table expects.\n\n")
	} else {
		fmt.Fprintf(b, "MISMATCHES (%d):\n\n", len(r.Mismatches))
		for _, m := range r.Mismatches {
			b.WriteString(bullet + m.String() + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(bullet + r.readsLine() + "\n")
	for _, n := range r.Notes {
		b.WriteString(bullet + n + "\n")
	}
}

// progress writes one line per step to stderr: overwritten in place on a
// terminal, one line each otherwise (a log or CI).
type progress struct {
	w     io.Writer
	tty   bool
	wrote bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) say(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	line := "compare: " + fmt.Sprintf(format, args...)
	if p.tty {
		// \r returns to the line's start, \x1b[K clears the rest of it.
		fmt.Fprint(p.w, "\r\x1b[K"+line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.wrote = true
}

// live is a line worth showing only where it is overwritten in place: a
// counter on a terminal.
func (p *progress) live(format string, args ...any) {
	if p != nil && p.tty {
		p.say(format, args...)
	}
}

// done clears the last in-place line, so that the report starts clean.
func (p *progress) done() {
	if p != nil && p.tty && p.wrote {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
