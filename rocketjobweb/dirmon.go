package rocketjobweb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// Dirmon: the watched folders (sliced.DirmonEntry) and the files taken.
//
//	GET    /api/dirmon                     {"entries": [...], "files": [...]} (the last files taken)
//	POST   /api/dirmon                     a JSON entry: 201 with the entry as stored
//	POST   /api/dirmon/{name}/enable|disable
//	DELETE /api/dirmon/{name}
//
// and the page /dirmon with the same actions as forms. Adding or changing
// an entry is an admin's; an entry only names folders: the servers scan
// only those under the roots their operator gave them (server --dirmon),
// so an entry cannot make a server read any other file.

// dirmonFilesShown is how many of the last files taken the API and the
// page show.
const dirmonFilesShown = 50

// maxDirmonBody bounds the JSON body of POST /api/dirmon.
const maxDirmonBody = 64 << 10

// dirmonErr maps the Dirmon errors to their API answers.
func dirmonErr(err error) error {
	switch {
	case errors.Is(err, sliced.ErrBadDirmon):
		return apiErr(http.StatusBadRequest, "bad_parameter", err.Error())
	case errors.Is(err, sliced.ErrDirmonNotFound):
		return apiErr(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, sliced.ErrDirmonExists):
		return apiErr(http.StatusConflict, "exists", err.Error())
	}
	return err
}

// dirmonView reads the entries and the last files taken.
func (h *Handler) dirmonView(r *http.Request) ([]sliced.DirmonEntry, []sliced.DirmonFile, error) {
	entries, err := sliced.DirmonEntries(r.Context(), h.client)
	if err != nil {
		return nil, nil, err
	}
	files, err := sliced.DirmonFiles(r.Context(), h.client, "", dirmonFilesShown)
	if entries == nil {
		entries = []sliced.DirmonEntry{}
	}
	if files == nil {
		files = []sliced.DirmonFile{}
	}
	return entries, files, err
}

// apiDirmon: GET /api/dirmon.
func (h *Handler) apiDirmon(w http.ResponseWriter, r *http.Request) {
	entries, files, err := h.dirmonView(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "files": files})
}

// apiAddDirmon: POST /api/dirmon with a JSON entry (unknown fields refused).
func (h *Handler) apiAddDirmon(w http.ResponseWriter, r *http.Request) {
	var e sliced.DirmonEntry
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDirmonBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, err)
			return
		}
		h.fail(w, r, badParam("the body must be one JSON Dirmon entry: %v", truncate(err.Error(), 200)))
		return
	}
	if dec.More() {
		h.fail(w, r, badParam("the body must be one JSON Dirmon entry"))
		return
	}
	e.Status, e.CreatedAt = nil, time.Time{} // set by the server, not the client
	if err := sliced.AddDirmon(r.Context(), h.client, &e); err != nil {
		h.fail(w, r, dirmonErr(err))
		return
	}
	h.log.Info("dirmon entry added", "entry", e.Name, "folder", e.Folder, "type", e.Type, "user", principalFrom(r).Name)
	writeJSON(w, http.StatusCreated, e)
}

// changeDirmon applies action (enable, disable, remove) to the entry name.
func (h *Handler) changeDirmon(r *http.Request, name, action string) error {
	var err error
	switch action {
	case "enable", "disable":
		err = sliced.EnableDirmon(r.Context(), h.client, name, action == "enable")
	case "remove":
		err = sliced.RemoveDirmon(r.Context(), h.client, name)
	default:
		return apiErr(http.StatusNotFound, "not_found", "unknown Dirmon action "+strconv.Quote(truncate(action, 40))+" (enable, disable, remove)")
	}
	if err == nil {
		h.log.Info("dirmon entry changed", "entry", name, "action", action, "user", principalFrom(r).Name)
	}
	return dirmonErr(err)
}

// apiDirmonAction: POST /api/dirmon/{name}/enable|disable.
func (h *Handler) apiDirmonAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if action == "remove" {
		h.fail(w, r, apiErr(http.StatusNotFound, "not_found", "remove an entry with DELETE /api/dirmon/{name}"))
		return
	}
	if err := h.changeDirmon(r, name, action); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "enabled": action == "enable"})
}

// apiRemoveDirmon: DELETE /api/dirmon/{name}.
func (h *Handler) apiRemoveDirmon(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.changeDirmon(r, name, "remove"); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "removed": true})
}

// dirmonPage: GET /dirmon.
func (h *Handler) dirmonPage(w http.ResponseWriter, r *http.Request) {
	h.renderDirmon(w, r, http.StatusOK, &sliced.DirmonEntry{Enabled: true}, "")
}

func (h *Handler) renderDirmon(w http.ResponseWriter, r *http.Request, status int, form *sliced.DirmonEntry, msg string) {
	entries, files, err := h.dirmonView(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var types []typeJSON
	for _, t := range h.types() {
		if t.Kind == string(rocketjob.KindSliced) {
			types = append(types, t)
		}
	}
	h.render(w, r, status, "dirmon", pageData{Title: "Dirmon", Nav: "dirmon", Refresh: refreshList, Data: map[string]any{
		"Entries": entries, "Files": files, "Types": types, "Form": form, "Error": msg,
		"Formats": []string{"lines", "csv", "jsonl"}, "HasKeys": h.client.Keyring() != nil,
	}})
}

// dirmonAddForm: POST /dirmon, the page's form to add an entry.
func (h *Handler) dirmonAddForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDirmonBody)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, badParam("the form does not parse"))
		return
	}
	f := r.PostForm
	e := &sliced.DirmonEntry{
		Name: strings.TrimSpace(f.Get("name")), Folder: strings.TrimSpace(f.Get("folder")), Pattern: strings.TrimSpace(f.Get("pattern")),
		Type: f.Get("type"), Archive: strings.TrimSpace(f.Get("archive")), Failed: strings.TrimSpace(f.Get("failed")),
		Enabled: f.Get("enabled") != "",
	}
	for _, line := range strings.Split(f.Get("params"), "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
			e.Params = append(e.Params, line)
		}
	}
	o := &e.Options
	o.Description, o.Format, o.Window = f.Get("description"), f.Get("format"), strings.TrimSpace(f.Get("window"))
	o.RequireColumns, o.AllowColumns = names(f.Get("require_columns")), names(f.Get("allow_columns"))
	var bad error
	number := func(field string) int {
		s := strings.TrimSpace(f.Get(field))
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil && bad == nil {
			bad = fmt.Errorf("%s: %q is not a number", field, truncate(s, 20))
		}
		return n
	}
	o.Priority, o.SliceSize, o.MaxWorkers = number("priority"), number("slice_size"), number("max_workers")
	for field, p := range map[string]**bool{"stop_on_error": &o.StopOnError, "encrypt": &o.Encrypt, "compress": &o.Compress} {
		if f.Get(field) != "" {
			on := true
			*p = &on
		}
	}
	err := bad
	if err == nil {
		err = dirmonErr(sliced.AddDirmon(r.Context(), h.client, e))
	}
	if err != nil {
		ae := classify(err, requestIDFrom(r))
		if bad != nil {
			ae = badParam("%v", bad)
		}
		if ae.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		h.renderDirmon(w, r, ae.Status, e, ae.Message)
		return
	}
	h.log.Info("dirmon entry added", "entry", e.Name, "folder", e.Folder, "type", e.Type, "user", principalFrom(r).Name)
	flash(r, fmt.Sprintf("Added Dirmon entry %s: %s/%s becomes %s jobs.", e.Name, e.Folder, e.Pattern, e.Type), false)
	http.Redirect(w, r, h.path("/dirmon"), http.StatusSeeOther)
}

// names splits a comma-separated list of column names.
func names(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// dirmonActionForm: POST /dirmon/{name}/enable|disable|remove from the page.
func (h *Handler) dirmonActionForm(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if err := h.changeDirmon(r, name, action); err != nil {
		e := classify(err, requestIDFrom(r))
		if e.Status >= 500 {
			h.fail(w, r, err)
			return
		}
		flash(r, e.Message, true)
	} else {
		flash(r, fmt.Sprintf("Dirmon entry %s: %s done.", name, action), false)
	}
	http.Redirect(w, r, h.path("/dirmon"), http.StatusSeeOther)
}
