package sliced_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// TestDirmonEntryCheck: an entry's defaults are filled in, and entries
// that cannot work are refused with ErrBadDirmon before anything is
// stored: names, relative or NUL paths, patterns that could reach another
// folder, archive or failed folder equal to the watched one, simple or
// unknown types, bad options.
func TestDirmonEntryCheck(t *testing.T) {
	reg := rocketjob.NewRegistry()
	must(t, sliced.RegisterLines(reg, "up", func(_ context.Context, l string) (string, error) { return strings.ToUpper(l), nil }, nil))
	must(t, rocketjob.Register(reg, "simple", func(context.Context, *rocketjob.Job, struct{}) error { return nil }, nil))
	e := sliced.DirmonEntry{Name: "in", Folder: "/data/in/", Type: "up"}
	must(t, e.Check(reg))
	if e.Folder != "/data/in" || e.Pattern != "*" || e.Archive != "/data/in/archive" || e.Failed != "/data/in/failed" {
		t.Errorf("defaults: %+v", e)
	}
	opts, err := e.UploadOptions(reg)
	must(t, err)
	if opts.CollectOutput == nil || !*opts.CollectOutput || opts.DestroyOnComplete == nil || *opts.DestroyOnComplete {
		t.Errorf("upload options keep no output: %+v", opts)
	}
	for name, bad := range map[string]sliced.DirmonEntry{
		"empty name":        {Folder: "/in", Type: "up"},
		"slash in name":     {Name: "a/b", Folder: "/in", Type: "up"},
		"relative folder":   {Name: "a", Folder: "in", Type: "up"},
		"NUL in folder":     {Name: "a", Folder: "/in\x00x", Type: "up"},
		"pattern with /":    {Name: "a", Folder: "/in", Pattern: "../*", Type: "up"},
		"pattern ..":        {Name: "a", Folder: "/in", Pattern: "..", Type: "up"},
		"bad pattern":       {Name: "a", Folder: "/in", Pattern: "[", Type: "up"},
		"relative archive":  {Name: "a", Folder: "/in", Archive: "done", Type: "up"},
		"archive is folder": {Name: "a", Folder: "/in", Archive: "/in/", Type: "up"},
		"simple type":       {Name: "a", Folder: "/in", Type: "simple"},
		"unknown type":      {Name: "a", Folder: "/in", Type: "nope"},
		"priority":          {Name: "a", Folder: "/in", Type: "up", Options: sliced.DirmonOptions{Priority: 101}},
		"slice size":        {Name: "a", Folder: "/in", Type: "up", Options: sliced.DirmonOptions{SliceSize: -1}},
		"format":            {Name: "a", Folder: "/in", Type: "up", Options: sliced.DirmonOptions{Format: "exe"}},
		"window":            {Name: "a", Folder: "/in", Type: "up", Options: sliced.DirmonOptions{Window: "9am"}},
		"parameters":        {Name: "a", Folder: "/in", Type: "up", Params: []string{"x=1"}},
	} {
		if err := bad.Check(reg); !errors.Is(err, sliced.ErrBadDirmon) {
			t.Errorf("%s: %v, want ErrBadDirmon", name, err)
		}
	}
}
