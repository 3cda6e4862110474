package rocketjobweb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// createMany handles POST /api/jobs?type=T with a JSON array body: one simple
// job per element, each element the job's params (a JSON object), all with
// the options of the query (priority, run_at, description). It reports false,
// having read nothing the next handler needs, when the body is not a JSON
// array. Every element is checked before any job is written: a bad one is a
// 400 naming its index and no job is written. The answer is 202 with the
// ids in the order of the array.
func (h *Handler) createMany(w http.ResponseWriter, r *http.Request) bool {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxUpload)
	body := bufio.NewReader(r.Body)
	r.Body = struct {
		io.Reader
		io.Closer
	}{body, r.Body}
	if !startsArray(body) {
		return false
	}
	ids, typ, err := h.enqueueArray(r, body)
	if err != nil {
		h.fail(w, r, err)
		return true
	}
	h.log.Info("jobs created", "count", len(ids), "type", typ, "user", principalFrom(r).Name)
	h.stats.invalidate()
	writeJSON(w, http.StatusAccepted, map[string]any{"type": typ, "count": len(ids), "ids": ids})
	return true
}

// startsArray reports whether the first byte after white space is '['.
func startsArray(br *bufio.Reader) bool {
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if err != nil || len(b) < n {
			return false
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return true
		}
		return false
	}
}

// enqueueArray reads the array of params and enqueues the jobs.
func (h *Handler) enqueueArray(r *http.Request, body io.Reader) (ids []string, typ string, err error) {
	u := &uploadParams{}
	if err := u.setAll(r.URL.Query()); err != nil {
		return nil, "", err
	}
	for _, k := range []string{"slice_size", "format", "encrypt", "compress"} {
		if u.given[k] {
			return nil, "", badParam("%s: an array body enqueues simple jobs, which take only type, priority, run_at and description", k)
		}
	}
	if u.Type == "" {
		return nil, "", badParam("missing type: an array body of params needs ?type=T")
	}
	spec, err := h.spec(u.Type)
	if err != nil {
		return nil, "", err
	}
	if spec.Kind != rocketjob.KindSimple {
		return nil, "", badParam("job type %q is a sliced job: an array body enqueues simple jobs (upload records with {\"type\": ..., \"records\": [...]})", u.Type)
	}
	dec := json.NewDecoder(body)
	if err := expectDelim(dec, '['); err != nil {
		return nil, "", apiErr(http.StatusBadRequest, "bad_request", "invalid JSON body: "+truncate(err.Error(), 200))
	}
	var args []any
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, "", err
			}
			return nil, "", apiErr(http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid JSON body at element %d: %s", i, truncate(err.Error(), 200)))
		}
		p := bytes.TrimSpace(raw)
		if len(p) == 0 || p[0] != '{' {
			return nil, "", apiErr(http.StatusBadRequest, "bad_args", fmt.Sprintf("[%d]: params must be a JSON object", i))
		}
		var doc bson.D
		if err := bson.UnmarshalExtJSON(p, false, &doc); err != nil {
			return nil, "", apiErr(http.StatusBadRequest, "bad_args", fmt.Sprintf("[%d]: %s", i, truncate(err.Error(), 200)))
		}
		b, err := bson.Marshal(doc)
		if err != nil {
			return nil, "", apiErr(http.StatusBadRequest, "bad_args", fmt.Sprintf("[%d]: %s", i, truncate(err.Error(), 200)))
		}
		args = append(args, bson.Raw(b))
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, "", apiErr(http.StatusBadRequest, "bad_request", "invalid JSON body: "+truncate(err.Error(), 200))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "", apiErr(http.StatusBadRequest, "bad_request", "invalid JSON body: data after the array")
	}
	if len(args) == 0 {
		return nil, "", apiErr(http.StatusBadRequest, "bad_args", "the array is empty: give one params object per job")
	}
	opts, err := h.enqueueOptions(r.Context(), u)
	if err != nil {
		return nil, "", err
	}
	jobs, err := h.client.EnqueueMany(r.Context(), u.Type, args, opts)
	err = scheduleErr(err)
	var ae *rocketjob.ArgsError
	if errors.As(err, &ae) {
		return nil, "", apiErr(http.StatusBadRequest, "bad_args", fmt.Sprintf("[%d]: %s", ae.Index, truncate(ae.Err.Error(), 200)))
	}
	if err != nil {
		return nil, "", err
	}
	ids = make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID.Hex()
	}
	return ids, u.Type, nil
}
