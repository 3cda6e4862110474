package sliced

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// tableOptions are the tabular settings of a registered type.
type tableOptions struct {
	OutputFormat  Format
	LenientQuotes bool
	Header        []string
	Widths        []int
	OutputHeader  []string
}

// typeTables holds the tableOptions of registered tabular types (typeKey
// -> *tableOptions); an entry goes when its registry is garbage collected.
var typeTables sync.Map

// setTypeTable remembers the tabular settings of the type name of r.
func setTypeTable(r *rocketjob.Registry, name string, t *tableOptions) {
	k := typeKey{weak.Make(r), name}
	typeTables.Store(k, t)
	runtime.AddCleanup(r, func(k typeKey) { typeTables.Delete(k) }, k)
}

// typeTable returns the tabular settings of the type name of r (zero when
// it has none).
func typeTable(r *rocketjob.Registry, name string) tableOptions {
	v, ok := typeTables.Load(typeKey{weak.Make(r), name})
	if !ok {
		return tableOptions{}
	}
	return *v.(*tableOptions)
}

// tableFromOptions checks the tabular settings of a type registered in
// format f and returns them (nil when it has none).
func tableFromOptions(name string, f Format, opts *Options) (*tableOptions, error) {
	if opts.Format != "" && opts.Format != f {
		return nil, fmt.Errorf("job type %q: Options.Format %q is for tabular types (RegisterCSV, RegisterRows)", name, opts.Format)
	}
	t := &tableOptions{OutputFormat: opts.OutputFormat, LenientQuotes: opts.LenientQuotes,
		Header: slices.Clone(opts.Header), Widths: slices.Clone(opts.Widths), OutputHeader: slices.Clone(opts.outputHeader)}
	if t.OutputFormat == "" && !t.LenientQuotes && len(t.Header) == 0 && len(t.Widths) == 0 && len(t.OutputHeader) == 0 && f != Fixed {
		return nil, nil
	}
	if !f.Tabular() {
		return nil, fmt.Errorf("job type %q: output formats, lenient quotes and declared columns are for tabular types (the type reads %s)", name, f)
	}
	if err := checkOutputFormat(f, t.OutputFormat); err != nil {
		return nil, fmt.Errorf("job type %q: %w", name, err)
	}
	ro := ReaderOptions{Format: f, Header: t.Header, Widths: t.Widths}
	if err := ro.validate(); err != nil {
		return nil, fmt.Errorf("job type %q: %w", name, err)
	}
	return t, nil
}

// checkOutputFormat checks that records read as in can be written as out.
func checkOutputFormat(in, out Format) error {
	switch {
	case out == "" || out == in:
		return nil
	case !out.valid():
		_, err := ParseFormat(string(out))
		return err
	case !in.Tabular():
		return fmt.Errorf("only tabular input (csv, psv, tsv, fixed, xlsx) can be written as another format; this input is %s", in)
	case out == Fixed:
		return fmt.Errorf("%s records cannot be written as fixed-width (no layout): choose csv, psv, tsv, jsonl or xlsx", in)
	case !out.Tabular() && out != JSONL:
		return fmt.Errorf("%s records cannot be written as %s: choose csv, psv, tsv, jsonl or xlsx", in, out)
	case out == XLSX:
		_, err := rowFormat(XLSX)
		return err
	}
	return nil
}

// uploadFormat decides the input format of an upload of a type registered
// in typeFormat: the upload's Format, else for a tabular type the format
// its file name names (when tabular too), else the type's.
func uploadFormat(typeFormat Format, opts *UploadOptions) (Format, error) {
	if opts.Format != "" {
		return ParseFormat(string(opts.Format))
	}
	if typeFormat.Tabular() && typeFormat != Fixed {
		if f, ok := FormatFromName(opts.Name); ok && f.Tabular() {
			return f, nil
		}
	}
	return typeFormat, nil
}

// uploadReaderOptions returns the ReaderOptions of an upload of type typ in
// format, and the output format of the job (empty when it is format). Bad
// combinations wrap ErrBadOptions.
func uploadReaderOptions(c *rocketjob.Client, typ string, format Format, opts *UploadOptions) (*ReaderOptions, Format, error) {
	t := typeTable(c.Registry(), typ)
	ro := &ReaderOptions{Format: format, LenientQuotes: opts.LenientQuotes || t.LenientQuotes,
		Header: opts.Header, Widths: opts.Widths, Sheet: opts.Sheet, KeepCR: format == Lines}
	if len(ro.Header) == 0 && len(t.Header) > 0 && format.Tabular() {
		ro.Header, ro.Widths = t.Header, t.Widths
		if format != Fixed {
			ro.Widths = nil
		}
	}
	if err := ro.validate(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if ro.LenientQuotes && format.separator() == 0 {
		return nil, "", fmt.Errorf("%w: lenient quotes are for csv, psv and tsv input (got %s)", ErrBadOptions, format)
	}
	if ro.Sheet != "" && format != XLSX {
		return nil, "", fmt.Errorf("%w: a sheet name is for xlsx input (got %s)", ErrBadOptions, format)
	}
	out := opts.OutputFormat
	if out == "" {
		out = t.OutputFormat
	}
	if err := checkOutputFormat(format, out); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if out == format {
		out = ""
	}
	if format == XLSX {
		if _, err := rowFormat(XLSX); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
	}
	return ro, out, nil
}

// finishTable records on job what the download needs of what rd read.
func finishTable(c *rocketjob.Client, job *rocketjob.Job, rd *Reader, out Format) {
	job.OutputHeader = typeTable(c.Registry(), job.Type).OutputHeader
	job.BOM = rd.BOM()
	job.KeepCR = rd.KeptCR()
	job.OutputFormat = string(out)
	if rd.format == Fixed {
		job.Widths = slices.Clone(rd.opts.Widths)
	}
	if le := rd.LineEnding(); le != "\n" && !job.KeepCR {
		job.LineEnding = le
	}
	job.NoFinalNewline = !rd.FinalNewline()
}

// jobWriterOptions are the WriterOptions of a download of job's output.
func jobWriterOptions(job *rocketjob.Job, header []string) WriterOptions {
	out := Format(job.OutputFormat)
	if out == "" {
		out = Format(job.Format)
	}
	wo := WriterOptions{
		Format:       out,
		RecordFormat: Format(job.Format),
		Header:       header,
		Widths:       job.Widths,
		LineEnding:   job.LineEnding,
		FinalNewline: !job.NoFinalNewline,
		BOM:          job.BOM,
	}
	if len(job.OutputHeader) > 0 {
		wo.Header = job.OutputHeader
	}
	if out != Format(job.Format) {
		// A converted file gets the usual shape: every line ended.
		wo.FinalNewline = true
		if out == JSONL || out == XLSX {
			wo.BOM = false
		}
	}
	return wo
}

// downloadWriterOptions are the WriterOptions of a download of job's
// output in format (empty: the job's output format).
func downloadWriterOptions(job *rocketjob.Job, header []string, format Format) (WriterOptions, error) {
	if format == "" {
		return jobWriterOptions(job, header), nil
	}
	if format == Format(job.OutputFormat) || (job.OutputFormat == "" && format == Format(job.Format)) {
		return jobWriterOptions(job, header), nil
	}
	if err := checkOutputFormat(Format(job.Format), format); err != nil {
		return WriterOptions{}, fmt.Errorf("%w: job %s: %w", ErrBadOptions, job.ID.Hex(), err)
	}
	j := *job
	j.OutputFormat = string(format)
	return jobWriterOptions(&j, header), nil
}
