package rocketjob

import (
	"context"
	"time"
)

// HistoryEntry is one change made to a job by someone: a failed record
// fixed or deleted, a retry of its failed records.
type HistoryEntry struct {
	// At is when the change was made, by User (empty when unknown).
	At   time.Time `json:"at"`
	User string    `json:"user,omitempty"`
	// Action says what was done: "edit failed record", "delete failed
	// record", "retry".
	Action string `json:"action"`
	// Record is the record changed, 0 when the change is not about one.
	Record int64 `json:"record,omitempty"`
	// Detail says more, when there is more to say.
	Detail string `json:"detail,omitempty"`
}

// History returns the changes made to job id, oldest first. It is kept
// with the job and removed when the job is destroyed.
func (c *Client) History(ctx context.Context, id string) ([]HistoryEntry, error) {
	oid, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	if _, err := c.store.GetJob(ctx, oid); err != nil {
		return nil, err
	}
	list, err := c.store.JobHistory(ctx, oid)
	out := make([]HistoryEntry, len(list))
	for i, e := range list {
		out[i] = HistoryEntry{At: e.At, User: e.User, Action: e.Action, Record: e.Record, Detail: e.Detail}
	}
	return out, err
}

type userKey struct{}

// ContextWithUser returns ctx naming user as the one who makes the changes
// done with it, for the jobs' history (the command line names the
// operating-system user, the web UI the signed-in user).
func ContextWithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the user ContextWithUser put in ctx, or "".
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}
