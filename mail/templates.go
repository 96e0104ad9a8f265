package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
)

//go:embed templates/*.txt templates/*.html
var defaultTemplates embed.FS

// Data is what a template sees.
type Data struct {
	// Email is the recipient's address.
	Email string
	// NewEmail is the requested address of an email change (notice).
	NewEmail string
	// Link is the message's link, "" for notices.
	Link string
	// SiteURL is mail.site_url.
	SiteURL string
}

// Content is a rendered message.
type Content struct {
	Subject string `json:"s"`
	Text    string `json:"t"`
	HTML    string `json:"h"`
	Link    string `json:"l,omitempty"`
	Token   string `json:"k,omitempty"`
}

// Templates are the text and HTML templates of every kind.
type Templates struct {
	text map[Kind]*texttemplate.Template
	html map[Kind]*htmltemplate.Template
}

// LoadTemplates parses the embedded templates, each replaced by the file
// of the same name in dir (kind.txt, kind.html) when dir is set and has
// one. A template that does not parse is an error naming its file: the
// server does not start with a mail it cannot write.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[Kind]*texttemplate.Template{}, html: map[Kind]*htmltemplate.Template{}}
	for _, k := range Kinds {
		for _, ext := range []string{"txt", "html"} {
			name := string(k) + "." + ext
			src, origin, err := templateSource(dir, name)
			if err != nil {
				return nil, err
			}
			if ext == "txt" {
				tt, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
				if err != nil {
					return nil, fmt.Errorf("mail template %s: %w", origin, err)
				}
				if tt.Lookup("subject") == nil {
					return nil, fmt.Errorf("mail template %s: no {{define \"subject\"}}", origin)
				}
				t.text[k] = tt
			} else {
				ht, err := htmltemplate.New(name).Option("missingkey=error").Parse(src)
				if err != nil {
					return nil, fmt.Errorf("mail template %s: %w", origin, err)
				}
				t.html[k] = ht
			}
		}
	}
	// Render each once: an error that only shows at execution (an
	// unknown field) stops start-up too, not the first mail.
	for _, k := range Kinds {
		if _, err := t.Render(k, Data{Email: "a@example.com", NewEmail: "b@example.com", Link: "https://example.com/x?token=t", SiteURL: "https://example.com"}); err != nil {
			return nil, fmt.Errorf("mail template %s (in %s): %w", k, orDefault(dir), err)
		}
	}
	return t, nil
}

func orDefault(dir string) string {
	if dir == "" {
		return "the embedded defaults"
	}
	return dir
}

func templateSource(dir, name string) (src, origin string, err error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			return string(b), p, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", "", fmt.Errorf("mail template %s: %w", p, err)
		}
	}
	b, err := defaultTemplates.ReadFile("templates/" + name)
	if err != nil {
		return "", "", fmt.Errorf("mail: no embedded template %s: %w", name, err)
	}
	return string(b), "embedded " + name, nil
}

// Render writes the message of kind k. A subject with a line break (a
// header injection through a template or its data) is refused.
func (t *Templates) Render(k Kind, d Data) (Content, error) {
	tt, ok := t.text[k]
	if !ok {
		return Content{}, fmt.Errorf("mail: unknown kind %q", k)
	}
	var subj, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Content{}, fmt.Errorf("mail: render %s subject: %w", k, err)
	}
	if err := tt.Execute(&text, d); err != nil {
		return Content{}, fmt.Errorf("mail: render %s text: %w", k, err)
	}
	if err := t.html[k].Execute(&html, d); err != nil {
		return Content{}, fmt.Errorf("mail: render %s html: %w", k, err)
	}
	s := strings.TrimSpace(subj.String())
	if err := checkHeader("subject", s); err != nil {
		return Content{}, err
	}
	return Content{Subject: s, Text: text.String(), HTML: html.String(), Link: d.Link}, nil
}
