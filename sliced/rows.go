package sliced

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// RowTag is the struct tag key that names the column of a field of a typed
// row: `rocketjob:"name"`, `rocketjob:"name,optional"`,
// `rocketjob:"when,format=2006-01-02"` (a time layout; it must come last)
// or `rocketjob:"-"` (not a column). An untagged exported field is the
// column of its field name. Column names match the header cleansed
// (trimmed, case folded), as Columns does.
const RowTag = "rocketjob"

// FieldError is why a field of a row did not convert to its struct field:
// a per-record error naming the column.
type FieldError struct {
	// Column is the column's name as the struct declares it.
	Column string
	// Value is the field's text.
	Value string
	// Err is the conversion error.
	Err error
}

// Error returns one line such as `column "amount": "12x" is not a number`.
func (e *FieldError) Error() string {
	v := e.Value
	if len(v) > 60 {
		v = v[:57] + "..."
	}
	return fmt.Sprintf("column %q: %q %v", e.Column, v, e.Err)
}

// Unwrap returns the conversion error.
func (e *FieldError) Unwrap() error { return e.Err }

// Conversion errors wrapped by *FieldError.
var (
	errNotNumber  = errors.New("is not a number")
	errNotInteger = errors.New("is not a whole number in range")
	errNotBool    = errors.New("is not a boolean (true/false, yes/no, 1/0)")
	errNotTime    = errors.New("is not a time")
)

// rowField is one column of a row struct.
type rowField struct {
	index    []int
	name     string
	key      string // cleansed name
	optional bool
	layout   string
	typ      reflect.Type
}

// rowSchema is the columns of a row struct type.
type rowSchema struct {
	typ    reflect.Type
	fields []rowField
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	durationType  = reflect.TypeFor[time.Duration]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
	marshalType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// schemaCache holds the rowSchema of each struct type.
var schemaCache sync.Map

// schemaOf returns the columns of struct type T, or an error naming a field
// of a type that cannot convert.
func schemaOf(t reflect.Type) (*rowSchema, error) {
	if v, ok := schemaCache.Load(t); ok {
		return v.(*rowSchema), nil
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("typed rows need a struct type, not %v", t)
	}
	s := &rowSchema{typ: t}
	seen := map[string]string{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get(RowTag)
		if tag == "-" {
			continue
		}
		rf := rowField{index: f.Index, name: f.Name, typ: f.Type}
		if tag != "" {
			name, opts, _ := strings.Cut(tag, ",")
			if name != "" {
				rf.name = name
			}
			for opts != "" {
				if l, ok := strings.CutPrefix(opts, "format="); ok {
					rf.layout = l
					break
				}
				var o string
				o, opts, _ = strings.Cut(opts, ",")
				switch o {
				case "optional":
					rf.optional = true
				default:
					return nil, fmt.Errorf("%v.%s: unknown tag option %q (optional, format=LAYOUT)", t, f.Name, o)
				}
			}
		}
		if !convertible(f.Type) {
			return nil, fmt.Errorf("%v.%s: a column cannot convert to %v (strings, numbers, booleans, time.Time, time.Duration, encoding.TextUnmarshaler, or pointers to them)", t, f.Name, f.Type)
		}
		rf.key = foldColumn(rf.name)
		if other, dup := seen[rf.key]; dup {
			return nil, fmt.Errorf("%v: fields %s and %s name the same column %q", t, other, f.Name, rf.name)
		}
		seen[rf.key] = f.Name
		s.fields = append(s.fields, rf)
	}
	if len(s.fields) == 0 {
		return nil, fmt.Errorf("%v has no columns (exported fields)", t)
	}
	v, _ := schemaCache.LoadOrStore(t, s)
	return v.(*rowSchema), nil
}

// convertible reports whether a column converts to and from type t.
func convertible(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType || t == durationType || reflect.PointerTo(t).Implements(unmarshalType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// columns returns the column names of the schema.
func (s *rowSchema) columns() []string {
	names := make([]string, len(s.fields))
	for i, f := range s.fields {
		names[i] = f.name
	}
	return names
}

// required returns the names of the columns that are not optional.
func (s *rowSchema) required() []string {
	var names []string
	for _, f := range s.fields {
		if !f.optional {
			names = append(names, f.name)
		}
	}
	return names
}

// RowDecoder decodes the rows of a file with a given header into values of
// the struct type T (see RowTag for how fields name columns).
type RowDecoder[T any] struct {
	schema *rowSchema
	pos    []int // column index in the header of each field, -1 when absent
}

// NewRowDecoder returns a RowDecoder of rows under header. A column of T
// that is not optional and not in header is an error naming it; so is a T
// that is not a struct of convertible fields.
func NewRowDecoder[T any](header []string) (*RowDecoder[T], error) {
	s, err := schemaOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	at := map[string]int{}
	for i, h := range header {
		if _, dup := at[foldColumn(h)]; !dup {
			at[foldColumn(h)] = i
		}
	}
	d := &RowDecoder[T]{schema: s, pos: make([]int, len(s.fields))}
	var missing []string
	for i, f := range s.fields {
		p, ok := at[f.key]
		if !ok {
			p = -1
			if !f.optional {
				missing = append(missing, f.name)
			}
		}
		d.pos[i] = p
	}
	if len(missing) > 0 {
		return nil, &ColumnError{Missing: missing}
	}
	return d, nil
}

// Decode converts one row. An empty field leaves its struct field at its
// zero value (nil for a pointer); a row shorter than the header leaves the
// fields of its missing columns so too. Numbers, booleans and durations
// are trimmed of surrounding spaces first. A field that does not convert
// is a *FieldError naming the column.
func (d *RowDecoder[T]) Decode(row []string) (T, error) {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i, f := range d.schema.fields {
		p := d.pos[i]
		if p < 0 || p >= len(row) || row[p] == "" {
			continue
		}
		if err := setField(rv.FieldByIndex(f.index), row[p], f.layout); err != nil {
			return v, &FieldError{Column: f.name, Value: row[p], Err: err}
		}
	}
	return v, nil
}

// timeLayouts are tried in order for a time column without a layout.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// setField converts s into v.
func setField(v reflect.Value, s, layout string) error {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := setField(p.Elem(), s, layout); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if v.Type() == timeType {
		layouts := timeLayouts
		if layout != "" {
			layouts = []string{layout}
		}
		for _, l := range layouts {
			if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
				v.Set(reflect.ValueOf(t))
				return nil
			}
		}
		if layout != "" {
			return fmt.Errorf("%w in the layout %q", errNotTime, layout)
		}
		return fmt.Errorf("%w (RFC 3339 or 2006-01-02)", errNotTime)
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return errors.New("is not a duration (such as 1h30m)")
		}
		v.SetInt(int64(d))
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("does not convert: %w", err)
		}
		return nil
	}
	t := strings.TrimSpace(s)
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(t) {
		case "1", "t", "true", "y", "yes":
			v.SetBool(true)
		case "0", "f", "false", "n", "no":
			v.SetBool(false)
		default:
			return errNotBool
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(t, 10, v.Type().Bits())
		if err != nil {
			return errNotInteger
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(t, 10, v.Type().Bits())
		if err != nil {
			return errNotInteger
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(t, v.Type().Bits())
		if err != nil {
			return errNotNumber
		}
		v.SetFloat(n)
	}
	return nil
}

// RowEncoder encodes values of the struct type T as rows of its columns.
type RowEncoder[T any] struct {
	schema *rowSchema
}

// NewRowEncoder returns a RowEncoder of T, or an error when T is not a
// struct of convertible fields.
func NewRowEncoder[T any]() (*RowEncoder[T], error) {
	s, err := schemaOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	return &RowEncoder[T]{schema: s}, nil
}

// Header returns the column names of T, in field order.
func (e *RowEncoder[T]) Header() []string { return e.schema.columns() }

// Encode returns the fields of v in Header order: numbers in their
// shortest form, booleans as true/false, times in their column's layout
// (RFC 3339 without one), nil pointers and zero times as empty fields.
func (e *RowEncoder[T]) Encode(v T) ([]string, error) {
	rv := reflect.ValueOf(&v).Elem()
	row := make([]string, len(e.schema.fields))
	for i, f := range e.schema.fields {
		s, err := formatField(rv.FieldByIndex(f.index), f.layout)
		if err != nil {
			return nil, &FieldError{Column: f.name, Err: err}
		}
		row[i] = s
	}
	return row, nil
}

// formatField returns the text of v.
func formatField(v reflect.Value, layout string) (string, error) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", nil
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return "", nil
		}
		if layout == "" {
			layout = time.RFC3339Nano
		}
		return t.Format(layout), nil
	case v.Type() == durationType:
		return time.Duration(v.Int()).String(), nil
	case v.Type().Implements(marshalType) || reflect.PointerTo(v.Type()).Implements(marshalType):
		var m encoding.TextMarshaler
		if v.CanAddr() {
			m, _ = v.Addr().Interface().(encoding.TextMarshaler)
		}
		if m == nil {
			m, _ = v.Interface().(encoding.TextMarshaler)
		}
		if m != nil {
			b, err := m.MarshalText()
			return string(b), err
		}
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits()), nil
	}
	return "", fmt.Errorf("cannot format %v", v.Type())
}

// RegisterRows registers a tabular type whose records are decoded into In
// and whose output rows are encoded from Out: In's fields name the columns
// they read (see RowTag), Out's the columns written, which the download
// writes as its header. Columns of In that are not optional are required:
// a file whose header lacks one is refused at upload, before anything is
// stored. A field that does not convert fails its record with a
// *FieldError naming the column; the other records go on.
//
// The input format is CSV unless Options.Format says psv, tsv, fixed or
// xlsx; opts.Columns may add checks.
//
//	type Order struct {
//		ID     string    `rocketjob:"id"`
//		Amount float64   `rocketjob:"amount"`
//		Day    time.Time `rocketjob:"day,format=2006-01-02"`
//	}
//	sliced.RegisterRows(reg, "orders", func(ctx context.Context, o Order) (Order, error) {...}, nil)
func RegisterRows[In, Out any](r *rocketjob.Registry, name string, fn func(ctx context.Context, in In) (Out, error), opts *Options) error {
	in, err := schemaOf(reflect.TypeFor[In]())
	if err != nil {
		return fmt.Errorf("job type %q: %w", name, err)
	}
	enc, err := NewRowEncoder[Out]()
	if err != nil {
		return fmt.Errorf("job type %q: %w", name, err)
	}
	f, err := tableFormat(name, opts)
	if err != nil {
		return err
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	cols := &Columns{}
	if o.Columns != nil {
		cols = o.Columns.clone()
	}
	for _, c := range in.required() {
		if !slices.ContainsFunc(cols.Required, func(n string) bool { return foldColumn(n) == foldColumn(c) }) {
			cols.Required = append(cols.Required, c)
		}
	}
	o.Columns = cols
	o.outputHeader = enc.Header()
	decoders := &decoderCache[In]{}
	return register(r, name, f, &o, func(ctx context.Context, job *rocketjob.Job, rec []byte) ([]byte, error) {
		row, err := DecodeFields(rec)
		if err != nil {
			return nil, err
		}
		dec, err := decoders.get(job)
		if err != nil {
			return nil, err
		}
		v, err := dec.Decode(row)
		if err != nil {
			return nil, err
		}
		out, err := fn(ctx, v)
		if err != nil {
			return nil, err
		}
		fields, err := enc.Encode(out)
		if err != nil {
			return nil, err
		}
		return EncodeFields(nil, fields), nil
	})
}

// decoderCache keeps the RowDecoder of the jobs a type is processing (each
// job's file has its own header).
type decoderCache[T any] struct {
	mu   sync.Mutex
	jobs map[string]*RowDecoder[T]
}

// maxCachedDecoders bounds a decoderCache; past it, it starts over.
const maxCachedDecoders = 64

// get returns the RowDecoder of job's header.
func (c *decoderCache[T]) get(job *rocketjob.Job) (*RowDecoder[T], error) {
	key := job.ID.Hex() + "\x00" + strings.Join(job.Header, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.jobs[key]; ok {
		return d, nil
	}
	d, err := NewRowDecoder[T](job.Header)
	if err != nil {
		return nil, err
	}
	if c.jobs == nil || len(c.jobs) >= maxCachedDecoders {
		c.jobs = map[string]*RowDecoder[T]{}
	}
	c.jobs[key] = d
	return d, nil
}
