package embedded

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestWarnOnlyDropsUniqueViolations: the embedded database's log keeps
// warnings and errors, less PostgreSQL's unique violations (claims that
// collide on purpose), as FerretDB's pgx tracing records them.
func TestWarnOnlyDropsUniqueViolations(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(warnOnly{slog.NewTextHandler(&buf, nil)})
	record := func(level slog.Level, msg string, attrs ...slog.Attr) {
		r := slog.NewRecord(time.Now(), level, msg, 0)
		r.AddAttrs(attrs...)
		if err := l.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	dup := errors.New(`ERROR: duplicate key value violates unique constraint "claims_pkey" (SQLSTATE 23505)`)
	record(slog.LevelError, "Exec", slog.Any("err", dup), slog.String("sql", "INSERT ..."))
	record(slog.LevelError, "Exec", slog.Any("err", errors.New("ERROR: disk full (SQLSTATE 53100)")))
	record(slog.LevelWarn, "slow query")
	record(slog.LevelInfo, "chatter")
	out := buf.String()
	if strings.Contains(out, "23505") {
		t.Errorf("a unique violation was logged:\n%s", out)
	}
	if !strings.Contains(out, "53100") || !strings.Contains(out, "slow query") {
		t.Errorf("an error or a warning was dropped:\n%s", out)
	}
	if strings.Contains(out, "chatter") {
		t.Errorf("an info record was logged:\n%s", out)
	}
}
