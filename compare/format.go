package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Write writes the report in the format: table (aligned text), markdown (a
// GitHub table) or json (the Report schema).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		return r.writeMarkdown(w)
	case "table", "":
		return r.writeTable(w)
	default:
		return fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(Formats, ", "))
	}
}

// grid is the report as rows of cells: a header, the guarantees, a
// section row, the costs.
func (r *Report) grid() (header []string, guarantees, costs [][]string) {
	header = append([]string{"guarantee"}, r.Strategies...)
	for _, g := range r.Guarantees {
		row := []string{g.Title}
		for _, s := range r.Strategies {
			row = append(row, string(g.Cells[s]))
		}
		guarantees = append(guarantees, row)
	}
	for _, c := range r.Costs {
		row := []string{c.Title + " (" + c.Unit + ")"}
		for _, s := range r.Strategies {
			row = append(row, formatValue(c.Values[s], c.Unit))
		}
		costs = append(costs, row)
	}
	return header, guarantees, costs
}

func formatValue(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if unit == "×" {
		s += "×"
	}
	return s
}

func (r *Report) title() string {
	return fmt.Sprintf("authserver compare: %s, %d verify requests per strategy, %s, %s",
		r.Driver, r.Requests, r.Go, r.GeneratedAt.Format("2006-01-02 15:04:05Z07:00"))
}

func (r *Report) writeTable(w io.Writer) error {
	header, gs, cs := r.grid()
	costHeader := make([]string, len(header))
	costHeader[0] = "cost"
	widths := make([]int, len(header))
	for _, row := range append(append([][]string{header}, gs...), cs...) {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
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
	b.WriteString(r.title() + "\n\n")
	line(header)
	for _, row := range gs {
		line(row)
	}
	b.WriteString("\n")
	line(costHeader)
	for _, row := range cs {
		line(row)
	}
	b.WriteString("\n")
	r.writeFooter(&b, "")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeMarkdown(w io.Writer) error {
	header, gs, cs := r.grid()
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
	for _, row := range gs {
		line(row)
	}
	section := make([]string, len(header))
	section[0] = "**cost**"
	line(section)
	for _, row := range cs {
		line(row)
	}
	b.WriteString("\n")
	r.writeFooter(&b, "- ")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFooter lists the mismatches and the notes.
func (r *Report) writeFooter(b *strings.Builder, bullet string) {
	if len(r.Mismatches) == 0 {
		b.WriteString("Mismatches: none: every strategy does what GET /api/v1/strategy claims.\n\n")
	} else {
		fmt.Fprintf(b, "MISMATCHES (%d):\n\n", len(r.Mismatches))
		for _, m := range r.Mismatches {
			b.WriteString(bullet + m.String() + "\n")
		}
		b.WriteString("\n")
	}
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
