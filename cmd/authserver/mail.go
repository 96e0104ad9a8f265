package main

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/mail"
	"github.com/revocable/authserver/models"
)

func mailCmd(configPath *string) *cobra.Command {
	c := &cobra.Command{
		Use:   "mail",
		Short: "Test the mail transport and read the mail outbox",
	}
	c.AddCommand(mailSendTestCmd(configPath), mailListCmd(configPath))
	return c
}

func mailSendTestCmd(configPath *string) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "send-test --to ADDRESS",
		Short: "Send one test mail through the configured transport, now",
		Long: `send-test renders the "test" template and sends it through mail.smtp or
mail.webhook directly (not through the outbox), and prints the outcome: the
transport's error, with the SMTP server's answer, when it fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath)
			if err != nil {
				return err
			}
			addr, err := models.NormalizeEmail(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			sender, err := authserver.NewMailSender(cfg)
			if err != nil {
				return err
			}
			if sender == nil {
				return fmt.Errorf("no mail transport is configured: set mail.smtp.host or mail.webhook.url")
			}
			tpl, err := mail.LoadTemplates(cfg.Mail.TemplatesDir)
			if err != nil {
				return err
			}
			content, err := tpl.Render(mail.Test, mail.Data{Email: addr, SiteURL: cfg.Mail.SiteURL})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			err = sender.Send(ctx, &mail.Message{Kind: mail.Test, To: addr, Subject: content.Subject, Text: content.Text, HTML: content.HTML})
			if err != nil {
				kind := "transient (would be retried)"
				if mail.IsPermanent(err) {
					kind = "permanent (would fail the message)"
				}
				return fmt.Errorf("%s refused the test mail, %s: %w", mail.Describe(sender), kind, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s accepted the test mail to %s\n", mail.Describe(sender), addr)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "recipient address")
	_ = c.MarkFlagRequired("to")
	return c
}

func mailListCmd(configPath *string) *cobra.Command {
	var status string
	var limit int
	c := &cobra.Command{
		Use:   "list [--status queued|sending|sent|failed]",
		Short: "List the newest messages of the mail outbox, without bodies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" && !slices.Contains([]string{models.MailQueued, models.MailSending, models.MailSent, models.MailFailed}, status) {
				return fmt.Errorf("--status must be queued, sending, sent or failed, got %q", status)
			}
			if limit < 1 || limit > 10000 {
				return fmt.Errorf("--limit must be between 1 and 10000, got %d", limit)
			}
			ctx, srv, err := openAdmin(cmd.Context(), *configPath)
			if err != nil {
				return err
			}
			defer srv.Close()
			msgs, err := mail.List(ctx, srv.DB(), status, limit)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tKIND\tRECIPIENT\tSTATUS\tATTEMPTS\tCREATED\tNEXT ATTEMPT\tLAST ERROR")
			for _, m := range msgs {
				next := "-"
				if m.Status == models.MailQueued {
					next = m.NextAttemptAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, m.Kind, m.Recipient, m.Status, m.Attempts,
					m.CreatedAt.UTC().Format(time.RFC3339), next, m.LastError)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&status, "status", "", "only messages with this status")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many messages, newest first")
	return c
}
