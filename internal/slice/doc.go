// Package slice owns the stored slice, end to end: nothing else in rocketjob
// packs, seals, opens or walks one.
//
// A slice holds a run of consecutive records of one job. Its life:
//
//   - Upload packs records into a body (Append) and seals it (Seal with
//     Input): compressed, then AES-GCM encrypted, as the job asks.
//   - A server opens a claimed slice and runs the job's per-record function
//     on each record (Process, built on Perform): outputs are packed into an
//     output body, failed records (with their errors) into a failures body
//     (AppendFailure), and both are sealed (Output, Failed).
//   - A download streams a job's output or failed records in input order
//     (Reader), one slice at a time, and fails closed when records are
//     missing (*ShortError).
//
// # Stored format
//
// A body is a sequence of records, each the uvarint of its length followed
// by its bytes (Append, Records). A failures body packs three records per
// failed record: its 1-based number in decimal, the input record (empty when
// the slice could not be read) and the error message (AppendFailure,
// Failures). Sealing uses the encryption package's envelope; its additional
// data binds the job, the kind (Input, Output, Failed, Header, or
// Category(name): "category:" and the name) and the slice number, so a
// slice copied to another job, kind, category or slot does not open.
// Stored slices of earlier versions must keep opening: the tests pin the
// bytes.
//
// A batch type (Task.Outputs) packs each output category's records into a
// body of its own, in the same record format, sealed as Category(name);
// with the slice's statistics and dropped records it goes to the store as
// a store.BatchResult. A type without categories or statistics makes no
// BatchResult: its stored bytes are exactly those of earlier versions.
package slice
