package sliced

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"weak"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// UnknownColumns says what an upload does with a header column that
// Columns.Allowed does not list.
type UnknownColumns int

const (
	// RefuseUnknown refuses the file, naming the unknown columns (the
	// default).
	RefuseUnknown UnknownColumns = iota
	// IgnoreUnknown accepts the file; the unknown columns stay in the header
	// and the records, unchanged, for the job's function to ignore.
	IgnoreUnknown
)

// Columns are checks on the header of a CSV upload. A file that fails them
// is refused before anything is stored, with an *InputError wrapping a
// *ColumnError (which wraps ErrColumns).
//
// Names are compared cleansed unless Exact: surrounding white space trimmed
// and Unicode case folded, so " Customer ID" matches "customer id". A column
// of the file matches a name when both cleanse to the same text.
type Columns struct {
	// Required columns must all be in the header.
	Required []string
	// Allowed lists the columns the header may have (Required ones are
	// always allowed); empty means any column.
	Allowed []string
	// Unknown says what to do with a column not in Allowed (nor Required)
	// when Allowed is not empty; the default refuses the file.
	Unknown UnknownColumns
	// Exact compares names byte for byte, without trimming or case folding.
	Exact bool
}

// ErrColumns is wrapped by every *ColumnError.
var ErrColumns = errors.New("the header does not have the expected columns")

// maxNamedColumns is how many column names a *ColumnError message lists of
// each kind; the rest are counted.
const maxNamedColumns = 20

// ColumnError is why a CSV header failed its Columns checks: the required
// columns it lacks and the columns it has that are not allowed. Upload
// returns it inside an *InputError naming the header's line.
type ColumnError struct {
	// Missing are the required columns not in the header, as the checks
	// name them.
	Missing []string
	// Unknown are the header's columns that are not allowed, as the file
	// names them.
	Unknown []string
	// NoHeader is set when the file had no header row at all (it was empty).
	NoHeader bool
}

// Error returns one line such as `missing required columns "amount",
// "id"; unknown columns "note"`.
func (e *ColumnError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing required "+plural(len(e.Missing), "column")+" "+quoteNames(e.Missing))
	}
	if len(e.Unknown) > 0 {
		parts = append(parts, "unknown "+plural(len(e.Unknown), "column")+" "+quoteNames(e.Unknown))
	}
	msg := strings.Join(parts, "; ")
	if msg == "" {
		msg = ErrColumns.Error()
	}
	if e.NoHeader {
		msg += " (the file has no header row)"
	}
	return msg
}

// Unwrap returns ErrColumns.
func (e *ColumnError) Unwrap() error { return ErrColumns }

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// quoteNames lists names quoted (so that a name with a comma, a newline or
// nothing at all stays readable on one line), at most maxNamedColumns.
func quoteNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == maxNamedColumns {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fmt.Sprintf("%q", n))
	}
	return b.String()
}

// empty reports whether c checks nothing.
func (c *Columns) empty() bool {
	return c == nil || (len(c.Required) == 0 && len(c.Allowed) == 0)
}

// validate checks the names and the policy of c.
func (c *Columns) validate() error {
	if c.Unknown != RefuseUnknown && c.Unknown != IgnoreUnknown {
		return fmt.Errorf("columns: unknown-column policy %d is not RefuseUnknown or IgnoreUnknown", c.Unknown)
	}
	for _, n := range slices.Concat(c.Required, c.Allowed) {
		if c.key(n) == "" {
			return fmt.Errorf("columns: empty column name %q", n)
		}
	}
	return nil
}

// clone returns a copy of c that shares nothing with it.
func (c *Columns) clone() *Columns {
	d := *c
	d.Required = slices.Clone(c.Required)
	d.Allowed = slices.Clone(c.Allowed)
	return &d
}

// key is the form of a column name that c compares.
func (c *Columns) key(name string) string {
	if c.Exact {
		return name
	}
	return foldColumn(name)
}

// foldColumn trims white space around name and case folds it: every rune
// becomes the smallest rune of its Unicode simple-folding orbit, so names
// that strings.EqualFold finds equal get the same key. Bytes that are not
// UTF-8 are kept as they are.
func foldColumn(name string) string {
	name = strings.TrimSpace(name)
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte(name[i])
			i++
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
		i += size
	}
	return b.String()
}

// check returns the columns of c that header lacks and the columns of
// header that c does not allow.
func (c *Columns) check(header []string) (missing, unknown []string) {
	have := make(map[string]bool, len(header))
	for _, h := range header {
		have[c.key(h)] = true
	}
	for _, n := range c.Required {
		if !have[c.key(n)] {
			missing = append(missing, n)
		}
	}
	if len(c.Allowed) == 0 || c.Unknown == IgnoreUnknown {
		return missing, nil
	}
	allowed := make(map[string]bool, len(c.Allowed)+len(c.Required))
	for _, n := range slices.Concat(c.Allowed, c.Required) {
		allowed[c.key(n)] = true
	}
	for _, h := range header {
		if !allowed[c.key(h)] {
			unknown = append(unknown, h)
		}
	}
	return missing, unknown
}

// checkColumns checks header against every set of rules and returns one
// *ColumnError naming all the missing and unknown columns, or nil.
func checkColumns(header []string, rules ...*Columns) error {
	e := &ColumnError{NoHeader: header == nil}
	for _, c := range rules {
		if c.empty() {
			continue
		}
		missing, unknown := c.check(header)
		for _, m := range missing {
			if !slices.Contains(e.Missing, m) {
				e.Missing = append(e.Missing, m)
			}
		}
		for _, u := range unknown {
			if !slices.Contains(e.Unknown, u) {
				e.Unknown = append(e.Unknown, u)
			}
		}
	}
	if len(e.Missing) == 0 && len(e.Unknown) == 0 {
		return nil
	}
	return e
}

// typeKey names a registered type in typeColumns without keeping its
// registry alive.
type typeKey struct {
	reg  weak.Pointer[rocketjob.Registry]
	name string
}

// typeColumns holds the Columns of the registered CSV types (typeKey ->
// *Columns); an entry goes when its registry is garbage collected.
var typeColumns sync.Map

// setTypeColumns remembers the column checks of the type name of r.
func setTypeColumns(r *rocketjob.Registry, name string, c *Columns) {
	k := typeKey{weak.Make(r), name}
	typeColumns.Store(k, c.clone())
	runtime.AddCleanup(r, func(k typeKey) { typeColumns.Delete(k) }, k)
}

// TypeColumns returns the column checks the type name of r was registered
// with (Options.Columns), or nil when it has none.
func TypeColumns(r *rocketjob.Registry, name string) *Columns {
	v, ok := typeColumns.Load(typeKey{weak.Make(r), name})
	if !ok {
		return nil
	}
	return v.(*Columns).clone()
}
