package compare

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// The HTML report is one self-contained page: inline CSS, the guarantee
// matrix as a table and every cost row as an inline SVG bar chart, with no
// script and no external resource, so that it can be attached to an issue
// or opened from disk as is. It is also well-formed XML (every element
// closed, attributes quoted), which the test checks.

// chart geometry, in SVG user units (CSS pixels).
const (
	chartLabelW = 112 // the strategy names
	chartBarW   = 220 // the longest bar
	chartValueW = 84  // the value after a bar
	chartBarH   = 14
	chartGap    = 3  // between the bars of one strategy
	chartGroup  = 10 // between strategies
	chartTop    = 6
)

// The series colours: cache on, cache off, a row the cache does not
// concern; writes, messages.
const (
	colourOn       = "#2563eb"
	colourOff      = "#ea580c"
	colourOther    = "#7c3aed"
	colourWrites   = "#475569"
	colourMessages = "#0d9488"
)

type htmlView struct {
	Title         string
	Meta          []string
	Strategies    []string
	Guarantees    []htmlGuarantee
	Mismatches    []string
	CostCharts    []htmlChart
	InvalCharts   []htmlChart
	InvalLegend   []htmlLegend
	CostLegend    []htmlLegend
	Reads         string
	Notes         []string
	MismatchCount int
}

type htmlGuarantee struct {
	Title, Claim, Setting string
	Cells                 []htmlCell
}

type htmlCell struct {
	Class, Text, Outcome string
}

type htmlLegend struct {
	Colour, Label string
}

type htmlChart struct {
	ID, Title, Subtitle string
	Width, Height       int
	Labels              []htmlText
	Bars                []htmlBar
	Values              []htmlText
	Ref                 *htmlLine
}

type htmlLine struct {
	X1, Y1, X2, Y2 int
}

type htmlText struct {
	X, Y  int
	Text  string
	Muted bool
}

type htmlBar struct {
	X, Y, W, H int
	Colour     string
	Title      string
}

// series is one set of values of a chart; nil values are not supported.
type series struct {
	name, colour, unit string
	values             map[string]*float64
}

// barChart lays out a horizontal bar chart: one group of bars per
// strategy, one bar per series, scaled so that top is the longest bar
// (charts meant to be read side by side share their top). ref, when
// positive, draws a dashed line at that value (1× on the ratio charts).
func barChart(id, title, subtitle string, strategies []string, ss []series, top, ref float64) htmlChart {
	groupH := len(ss)*(chartBarH+chartGap) - chartGap
	c := htmlChart{
		ID: id, Title: title, Subtitle: subtitle,
		Width:  chartLabelW + chartBarW + chartValueW,
		Height: chartTop*2 + len(strategies)*(groupH+chartGroup) - chartGroup,
	}
	scale := func(v float64) int {
		if top <= 0 {
			return 0
		}
		return int(math.Round(v / top * chartBarW))
	}
	if ref > 0 && ref <= top {
		x := chartLabelW + scale(ref)
		c.Ref = &htmlLine{X1: x, Y1: 0, X2: x, Y2: c.Height}
	}
	for i, name := range strategies {
		y0 := chartTop + i*(groupH+chartGroup)
		c.Labels = append(c.Labels, htmlText{X: chartLabelW - 8, Y: y0 + groupH/2 + 4, Text: name})
		if ss[0].values[name] == nil {
			c.Values = append(c.Values, htmlText{X: chartLabelW + 4, Y: y0 + groupH/2 + 4, Text: "501 not supported", Muted: true})
			continue
		}
		for j, s := range ss {
			y := y0 + j*(chartBarH+chartGap)
			v := s.values[name]
			if v == nil {
				continue
			}
			w := scale(*v)
			if *v > 0 {
				w = max(w, 2)
			}
			text := formatValue(*v, s.unit)
			if s.unit != "×" && s.unit != "" {
				text += " " + s.unit
			}
			c.Bars = append(c.Bars, htmlBar{X: chartLabelW, Y: y, W: w, H: chartBarH, Colour: s.colour, Title: fmt.Sprintf("%s, %s: %s", name, s.name, text)})
			c.Values = append(c.Values, htmlText{X: chartLabelW + w + 6, Y: y + chartBarH - 3, Text: text})
		}
	}
	return c
}

// maxOf is the largest value of the series.
func maxOf(ss ...series) float64 {
	var top float64
	for _, s := range ss {
		for _, v := range s.values {
			if v != nil && *v > top {
				top = *v
			}
		}
	}
	return top
}

// subtitle says how to read a cost row's chart.
func subtitle(unit string) string {
	switch unit {
	case "×":
		return "ratio to stateless under the same cache setting; the dashed line is 1×"
	case "req/s":
		return "req/s, higher is better"
	default:
		return unit + ", lower is better"
	}
}

func (r *Report) htmlView() htmlView {
	v := htmlView{
		Title: "authserver compare",
		Meta: []string{
			fmt.Sprintf("%s on %d CPUs, %s, generated %s", r.Driver, r.CPUs, r.Go, r.GeneratedAt.Format("2006-01-02 15:04:05Z07:00")),
			fmt.Sprintf("%d sequential verify requests and %d concurrent clients for %s per server",
				r.Requests, r.Clients, time.Duration(r.DurationMS)*time.Millisecond),
		},
		Strategies:    r.Strategies,
		Reads:         r.readsLine(),
		Notes:         r.Notes,
		MismatchCount: len(r.Mismatches),
		CostLegend:    []htmlLegend{{colourOn, "cache on (default)"}, {colourOff, "cache off"}},
		InvalLegend:   []htmlLegend{{colourWrites, "DB writes (INSERT/UPDATE/DELETE)"}, {colourMessages, "outbox messages (one Redis PUBLISH each)"}},
	}
	for _, g := range r.Guarantees {
		row := htmlGuarantee{Title: g.Title, Claim: g.Claim, Setting: g.Setting}
		for _, s := range r.Strategies {
			class := map[Cell]string{Pass: "pass", Fail: "fail", NA: "na"}[g.Cells[s]]
			row.Cells = append(row.Cells, htmlCell{Class: class, Text: string(g.Cells[s]), Outcome: g.Outcomes[s]})
		}
		v.Guarantees = append(v.Guarantees, row)
	}
	for _, m := range r.Mismatches {
		v.Mismatches = append(v.Mismatches, m.String())
	}
	// A cost row and its cache-off twin share their scale, so that the
	// two charts side by side compare.
	costSeries := make([]series, len(r.Costs))
	tops := map[string]float64{}
	for i, c := range r.Costs {
		colour := map[string]string{"on": colourOn, "off": colourOff}[c.Cache]
		if colour == "" {
			colour = colourOther
		}
		values := map[string]*float64{}
		for s, x := range c.Values {
			values[s] = &x
		}
		costSeries[i] = series{name: c.Title, colour: colour, unit: c.Unit, values: values}
		metric := strings.TrimSuffix(c.ID, "_cache_off")
		tops[metric] = max(tops[metric], maxOf(costSeries[i]))
	}
	for i, c := range r.Costs {
		ref := 0.0
		if c.Unit == "×" {
			ref = 1
		}
		v.CostCharts = append(v.CostCharts, barChart("cost-"+c.ID, c.Title, subtitle(c.Unit), r.Strategies,
			[]series{costSeries[i]}, tops[strings.TrimSuffix(c.ID, "_cache_off")], ref))
	}
	// The invalidation charts share one scale: a bar is as many writes in
	// every chart.
	invalSeries := make([][]series, len(r.Invalidation))
	var invalTop float64
	for i, c := range r.Invalidation {
		writes, messages := map[string]*float64{}, map[string]*float64{}
		for s, n := range c.Writes {
			if n != nil {
				x := float64(*n)
				writes[s] = &x
			}
		}
		for s, n := range c.Messages {
			if n != nil {
				x := float64(*n)
				messages[s] = &x
			}
		}
		invalSeries[i] = []series{
			{name: "DB writes", colour: colourWrites, values: writes},
			{name: "outbox messages", colour: colourMessages, values: messages},
		}
		invalTop = max(invalTop, maxOf(invalSeries[i]...))
	}
	for i, c := range r.Invalidation {
		sub := c.Request
		if c.Setting != "" {
			sub += ", " + c.Setting
		}
		v.InvalCharts = append(v.InvalCharts, barChart("invalidation-"+c.ID, c.Title, sub, r.Strategies, invalSeries[i], invalTop, 0))
	}
	return v
}

func (r *Report) writeHTML(w io.Writer) error {
	return htmlReport.Execute(w, r.htmlView())
}

// htmlReport is parsed once; it is never changed after.
var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{{.Title}}</title>
<style>
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0f172a; background: #f8fafc; margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; }
p.meta { margin: 0; color: #475569; }
p.lead { color: #334155; max-width: 860px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(15, 23, 42, .05); }
.scroll { overflow-x: auto; }
table.matrix { border-collapse: separate; border-spacing: 3px; width: 100%; }
table.matrix th { font-size: 13px; font-weight: 600; text-align: center; padding: 6px 4px; color: #334155; }
table.matrix th.row { text-align: left; font-weight: 500; color: #0f172a; min-width: 260px; }
table.matrix th.row small { display: block; color: #64748b; font-weight: 400; }
table.matrix td { text-align: center; padding: 6px 6px; border-radius: 6px; font-size: 13px; min-width: 92px; }
table.matrix td small { display: block; font-size: 11px; opacity: .85; }
td.pass { background: #dcfce7; color: #166534; }
td.fail { background: #fee2e2; color: #991b1b; font-weight: 700; }
td.na { background: #f1f5f9; color: #64748b; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(430px, 1fr)); gap: 14px; }
.chart h3 { font-size: 14px; margin: 0; }
.chart p { font-size: 12px; color: #64748b; margin: 0 0 6px; }
.chart svg { display: block; max-width: 100%; height: auto; }
.chart text { font-size: 12px; fill: #0f172a; }
.chart text.label { text-anchor: end; fill: #334155; }
.chart text.muted { fill: #94a3b8; font-style: italic; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; color: #334155; margin: 0 0 10px; }
.legend span.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
.mismatch { background: #fef2f2; border-color: #fecaca; color: #7f1d1d; }
.ok { background: #f0fdf4; border-color: #bbf7d0; color: #14532d; }
ul.notes { color: #334155; font-size: 14px; padding-left: 20px; }
ul.notes li { margin: 4px 0; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{range .Meta}}<p class="meta">{{.}}</p>
{{end}}
<p class="lead">Every cell is the outcome of a run: each strategy served the same scenarios through the HTTP API, and its costs were measured in the same run, the strategies taking turns.</p>
{{if .Mismatches}}<div class="card mismatch"><strong>{{.MismatchCount}} mismatch(es):</strong>
<ul>{{range .Mismatches}}<li>{{.}}</li>{{end}}</ul></div>
{{else}}<div class="card ok">No mismatch: every strategy does what GET /api/v1/strategy claims and what the scenario table expects.</div>
{{end}}
<h2 id="guarantees">Guarantees</h2>
<div class="card scroll">
<table class="matrix">
<thead><tr><th class="row">guarantee</th>{{range .Strategies}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Guarantees}}<tr><th class="row">{{.Title}}{{if .Claim}}<small>claim: {{.Claim}}{{if .Setting}}; setting: {{.Setting}}{{end}}</small>{{else}}<small>every strategy{{if .Setting}}; setting: {{.Setting}}{{end}}</small>{{end}}</th>{{range .Cells}}<td class="{{.Class}}" title="{{.Outcome}}">{{.Text}}<small>{{.Outcome}}</small></td>{{end}}</tr>
{{end}}</tbody>
</table>
</div>
<h2 id="costs">Verification cost</h2>
<div class="legend">{{range .CostLegend}}<span><span class="swatch" style="background: {{.Colour}}"></span>{{.Label}}</span>{{end}}</div>
<div class="charts">
{{range .CostCharts}}{{template "chart" .}}{{end}}</div>
<p class="meta">{{.Reads}}</p>
<h2 id="invalidation">Invalidation cost per request</h2>
<div class="legend">{{range .InvalLegend}}<span><span class="swatch" style="background: {{.Colour}}"></span>{{.Label}}</span>{{end}}</div>
<div class="charts">
{{range .InvalCharts}}{{template "chart" .}}{{end}}</div>
<h2 id="notes">How the numbers were made</h2>
<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
</main>
</body>
</html>
{{define "chart"}}<div class="card chart" id="{{.ID}}">
<h3>{{.Title}}</h3>
<p>{{.Subtitle}}</p>
<svg width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
{{range .Labels}}<text class="label" x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" rx="2" fill="{{.Colour}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Values}}<text{{if .Muted}} class="muted"{{end}} x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{with .Ref}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" stroke="#0f172a" stroke-opacity="0.45" stroke-dasharray="3 3"/>
{{end}}</svg>
</div>
{{end}}`))
