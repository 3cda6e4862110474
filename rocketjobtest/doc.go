// Package rocketjobtest helps test your own job types: it starts a database
// for a test, runs a simple job or a list of records through a type inline,
// without a server, and runs a full upload, server and download round trip.
// It is to rocketjob what rivertest is to River.
//
// # Inline, without a database
//
// Perform runs one simple job; Records runs records through a sliced type,
// following the type's options (hooks, StopOnError, SliceRetryLimit) as a
// server would, and returns the output a download would write and the failed
// records with their errors:
//
//	reg := rocketjob.NewRegistry()
//	sliced.RegisterLines(reg, "square", square, nil)
//
//	res, err := rocketjobtest.Records(ctx, reg, "square", []string{"3", "x", "4"})
//	// res.Output: ["9" "16"]; res.Failed: [{2 x strconv.Atoi: parsing "x": invalid syntax}]
//	// res.Job.State: failed ("1 of 3 records failed")
//
//	job, err := rocketjobtest.Perform(ctx, reg, "send_email", EmailArgs{To: "ops@example.com"})
//
// Inline runs are fast and need nothing, but they skip what a database adds:
// slices, encryption at rest, claims, crashes.
//
// # On a database
//
// Start gives a test a client on a fresh pair of databases, dropped when the
// test ends. The databases live on an embedded database (FerretDB in a
// temporary folder) that the first Start of the test binary starts and every
// later one shares, so every test can call Start, in parallel too. Set
// $ROCKETJOB_TEST_URI (or Options.URI) to use a MongoDB server instead. Add
//
//	func TestMain(m *testing.M) { rocketjobtest.Main(m) }
//
// to stop the embedded database and remove its folder when the tests end
// (otherwise the next test binary removes the folder).
//
// RoundTrip uploads a file, runs a server in the test's process until the
// job ends, and downloads the output and the failed records into the same
// Result as Records, so a test can check that both agree:
//
//	client := rocketjobtest.Start(t, reg, nil)
//	res, err := rocketjobtest.RoundTrip(t.Context(), client, "square", strings.NewReader("3\nx\n4\n"), nil)
//
// Open and DB.Close do what Start does for code without a *testing.T.
//
// # Delivery
//
// On a server, a type's functions run at least once per record: a slice may
// run again after a crash, and SliceRetryLimit retries whole slices. Records
// runs each record once (its failed records again, up to SliceRetryLimit), so
// a test that counts calls sees the minimum.
package rocketjobtest
