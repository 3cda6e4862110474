package rocketjobweb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Failed records of a failed job: view one, correct it or delete it
// (admins), and the job's history.
//
//	GET    /api/jobs/{id}/failures/{record}   the failed record, its error and pending fix
//	POST   /api/jobs/{id}/failures/{record}   {"record": "corrected record"} (a CSV row as one CSV line)
//	DELETE /api/jobs/{id}/failures/{record}   skip the record at the next retry
//	GET    /api/jobs/{id}/history             {"history": [...]}
//
// and the page /jobs/{id}/failures with the failed records, a form per
// record and the history. Fixes take effect at the job's next retry, which
// runs only the failed records.

// maxFixBody bounds the body of a fix.
const maxFixBody = 1 << 20

// fixErr maps the errors of the fixes to their API answers.
func fixErr(err error) error {
	switch {
	case errors.Is(err, sliced.ErrRecordNotFound):
		return apiErr(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, sliced.ErrNotFixable):
		return apiErr(http.StatusConflict, "not_fixable", err.Error())
	}
	return err
}

// recordNumber reads the {record} path value.
func recordNumber(r *http.Request) (int64, error) {
	s := r.PathValue("record")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, apiErr(http.StatusNotFound, "not_found", "no failed record "+strconv.Quote(truncate(s, 30)))
	}
	return n, nil
}

// jobRecord returns the job id and the record number of a failed-record
// path (/jobs/{id}/failures/{record}...), or the 404 of either.
func jobRecord(r *http.Request) (string, int64, error) {
	id, err := jobID(r)
	if err != nil {
		return "", 0, err
	}
	n, err := recordNumber(r)
	return id, n, err
}

// apiFailedRecord: GET /api/jobs/{id}/failures/{record}.
func (h *Handler) apiFailedRecord(w http.ResponseWriter, r *http.Request) {
	id, n, err := jobRecord(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := sliced.GetFailedRecord(r.Context(), h.client, id, n)
	if err != nil {
		h.fail(w, r, fixErr(err))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// fixRecord corrects (input not nil) or deletes record n of job id as the
// request's user.
func (h *Handler) fixRecord(r *http.Request, id string, n int64, input *string) (*sliced.FailedRecord, error) {
	user := principalFrom(r).Name
	var (
		f   *sliced.FailedRecord
		err error
	)
	if input != nil {
		f, err = sliced.FixFailedRecord(r.Context(), h.client, id, n, *input, user)
	} else {
		f, err = sliced.DeleteFailedRecord(r.Context(), h.client, id, n, user)
	}
	if err == nil {
		h.log.Info("failed record fixed", "job", id, "record", n, "delete", input == nil, "user", user)
	}
	return f, fixErr(err)
}

// apiFixRecord: POST /api/jobs/{id}/failures/{record} with {"record": TEXT}
// (JSON) or a record form field.
func (h *Handler) apiFixRecord(w http.ResponseWriter, r *http.Request) {
	id, n, err := jobRecord(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFixBody)
	var input *string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body struct {
			Record *string `json:"record"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			h.fail(w, r, badParam("the body must be {\"record\": \"...\"}: %v", truncate(err.Error(), 200)))
			return
		}
		input = body.Record
	} else if err := r.ParseForm(); err == nil && r.PostForm.Has("record") {
		v := r.PostForm.Get("record")
		input = &v
	}
	if input == nil {
		h.fail(w, r, badParam("missing record: the corrected record (to delete it, DELETE this URL)"))
		return
	}
	f, err := h.fixRecord(r, id, n, input)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// apiDeleteRecord: DELETE /api/jobs/{id}/failures/{record}.
func (h *Handler) apiDeleteRecord(w http.ResponseWriter, r *http.Request) {
	id, n, err := jobRecord(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := h.fixRecord(r, id, n, nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// apiHistory: GET /api/jobs/{id}/history.
func (h *Handler) apiHistory(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.client.History(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "history": list})
}

// failuresPageSize is how many failed records the failures page shows.
const failuresPageSize = 100

// failuresPage: GET /jobs/{id}/failures?offset=N.
func (h *Handler) failuresPage(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	job, err := h.client.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var offset int64
	if s := r.URL.Query().Get("offset"); s != "" {
		if offset, err = strconv.ParseInt(s, 10, 64); err != nil || offset < 0 {
			h.fail(w, r, badParam("offset must be a number from 0"))
			return
		}
	}
	data := map[string]any{"ID": id, "Type": job.Type, "State": job.State, "Fixable": job.State == rocketjob.StateFailed && job.Kind == rocketjob.KindSliced}
	if job.Kind == rocketjob.KindSliced {
		list, more, err := sliced.FailedRecords(r.Context(), h.client, id, offset, failuresPageSize)
		if err != nil {
			data["Error"] = classify(err, requestIDFrom(r)).Message
		}
		data["Failures"] = list
		if more {
			data["Next"] = offset + int64(len(list))
		}
		pending := 0
		for _, f := range list {
			if f.Fix != nil {
				pending++
			}
		}
		data["Pending"] = pending
	}
	hist, err := h.client.History(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data["History"] = hist
	h.render(w, r, http.StatusOK, "failures", pageData{Title: "Failed records of job " + id, Nav: "jobs", Data: data})
}

// failureForm: POST /jobs/{id}/failures/{record}/edit|delete from the
// failures page.
func (h *Handler) failureForm(w http.ResponseWriter, r *http.Request) {
	id, n, err := jobRecord(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var input *string
	switch r.PathValue("action") {
	case "edit":
		r.Body = http.MaxBytesReader(w, r.Body, maxFixBody)
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, badParam("the form does not parse"))
			return
		}
		v := r.PostForm.Get("record")
		input = &v
	case "delete":
	default:
		h.fail(w, r, apiErr(http.StatusNotFound, "not_found", "unknown action (edit, delete)"))
		return
	}
	if _, err := h.fixRecord(r, id, n, input); err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		flash(r, e.Message, true)
	} else if input != nil {
		flash(r, fmt.Sprintf("Record %d corrected: retry the job to run it.", n), false)
	} else {
		flash(r, fmt.Sprintf("Record %d deleted: the job's retry skips it.", n), false)
	}
	http.Redirect(w, r, h.path("/jobs/"+id+"/failures"), http.StatusSeeOther)
}
