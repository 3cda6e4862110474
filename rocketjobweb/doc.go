// Package rocketjobweb is Mission Control: the web UI, the JSON REST API and
// the Prometheus metrics of rocketjob, as one http.Handler. `rocketjob ui`
// and `rocketjob server --ui` serve it; a program mounts it in its own
// server, under a prefix of its choice:
//
//	h, err := rocketjobweb.NewHandler(client, &rocketjobweb.Options{
//		Prefix: "/rocketjob",
//		Token:  os.Getenv("ROCKETJOB_UI_TOKEN"),
//	})
//	if err != nil { ... }
//	defer h.Close() // after the server has stopped: it stops the statistics sampler
//	mux.Handle("/rocketjob/", h)
//
// # Mounting
//
// Mount the handler at Options.Prefix+"/" and let it strip the prefix
// itself (no http.StripPrefix): every link, redirect, asset URL and API
// link it writes carries the prefix, and its session cookie is scoped to
// it. The handler serves everything below: the pages, /api, /metrics,
// /healthz, /readyz and /assets (all paths below are relative to the
// prefix); a path outside the prefix is answered 404.
//
// Authentication is required unless Options.Listen names the loopback
// address of the server that serves the handler (see Options.Listen): a
// handler mounted in a program's own server cannot know what address that
// server listens on, so by default it refuses to run without a token or
// users (ErrAuthRequired).
//
// # Pages
//
// Server-rendered HTML (html/template, embedded; one small script, no build
// step), readable on a phone:
//
//   - / dashboard: jobs by state, records/s over the last ten minutes,
//     servers and their workers, the oldest queued job, running jobs.
//   - /jobs: jobs by state and type, most urgent first, with progress
//     bars; search by job id or description; paging.
//   - /jobs/{id}: progress (records total, processed, failed; slices by
//     state), timings, options, parameters, failure, the first failed
//     records; actions (priority, pause, resume, abort, retry, run-now,
//     destroy; description and max workers), the schedule (expiry,
//     dependencies, window, cron, retries) and downloads of the output and
//     of the failed records. /jobs has pause all and resume all (of the
//     type filtered).
//   - /jobs/{id}/failures: the failed records with their pending fixes, a
//     form per record to correct or delete it (a failed job), a retry
//     button and the job's history.
//   - /upload: a job type, every upload option and a file (streamed into
//     the job). /enqueue: a simple job, its parameters and options.
//   - /servers: state, heartbeat age, busy workers; pause, resume, stop.
//   - /dirmon: the watched folders and their last scan, the last files
//     taken (state, job, where they went); add, enable, disable, remove.
//
// Parts of a page marked data-live refresh in place every few seconds
// (the script fetches the page again and swaps them), without reloading.
//
// # REST API
//
// Every answer is JSON; every error is {"error": {"code": C, "message": M}}
// with a stable code: unauthorized (401), forbidden and csrf (403),
// bad_host (421),
// not_found (404, also for a malformed job id), bad_parameter,
// bad_priority, unknown_type, bad_args, bad_input, missing_file,
// pgp_no_key, pgp_wrong_key, pgp_no_recipient,
// simple_job (400), invalid_transition, conflict, not_ready, no_output,
// no_key (409), too_large (413), unsupported_media_type (415),
// too_many_attempts (429), internal (500: the message names only the
// request id, the log has the rest).
//
//	POST   /api/jobs                      multipart (fields, then exactly one file, last) or JSON -> 202
//	GET    /api/jobs?state=S[,S]&type=T&q=TEXT&order=newest&page=N&per_page=N
//	GET    /api/jobs/{id}                 progress (total, processed, succeeded, failed, slices) and timings
//	GET    /api/jobs/{id}/output          the output file, streamed; ?gzip=1 a .gz file;
//	                                      ?pgp=1 PGP-encrypted to Options.PGPRecipients;
//	                                      ?format=json&offset=N&limit=N a page of records
//	GET    /api/jobs/{id}/failures        a page of failed records (offset, limit); ?format=csv all of them
//	POST   /api/jobs/{id}/priority        {"priority": N}, a form field or ?priority=N
//	POST   /api/jobs/{id}/pause|resume|abort|retry|run-now
//	POST   /api/jobs/{id}/edit            {"description": TEXT, "max_workers": N} (a live job)
//	POST   /api/jobs/pause-all|resume-all ?type=T -> {"changed": N}
//	DELETE /api/jobs/{id}
//	GET    /api/jobs/{id}/failures/{record}   one failed record, its error and pending fix
//	POST   /api/jobs/{id}/failures/{record}   {"record": TEXT}: correct it (a failed job) -> not_fixable (409) otherwise
//	DELETE /api/jobs/{id}/failures/{record}   skip it at the next retry
//	GET    /api/jobs/{id}/history         fixes and retries: who, when
//	GET    /api/dirmon                    Dirmon entries and the last files taken
//	POST   /api/dirmon                    a JSON entry (sliced.DirmonEntry) -> 201; exists (409)
//	POST   /api/dirmon/{name}/enable|disable
//	DELETE /api/dirmon/{name}
//	GET    /api/servers
//	POST   /api/servers/{name}/pause|resume|stop   (name * is every server) -> 202
//	GET    /api/stats                     counts by state and type, oldest queued job, queue, throughput
//	GET    /api/types                     the registered job types
//
// POST /api/jobs takes the options type, priority, slice_size, format,
// description, run_at and expires_at (RFC 3339 or a delay such as 10m),
// after (job ids), window (START,DURATION[,ZONE]), encrypt, compress,
// stop_on_error, collect_output and max_workers (sliced jobs), retry_limit
// and cron (simple jobs) as form fields before the file part, as query
// parameters, or as JSON keys; an option of the other kind of job is a
// 400. A JSON body carries "records" (strings for a lines job,
// JSON values for a JSONL job, arrays of strings for a CSV job, the first
// being the header) or, for a simple job, "params". It answers 202 with
// id, status_url and results_url. A file named .gpg, .pgp or .asc (or
// that opens like a PGP message, when the handler has keys) is decrypted
// with Options.PGPKeys as it streams in; without a key that opens it the
// answer is a 400 (pgp_no_key, pgp_wrong_key) and nothing is stored.
// Jobs created here keep their output
// until destroyed, like the command line's. Uploads are streamed (JSON
// records are spooled to a temporary file) and bounded by
// Options.MaxUpload.
//
// # Metrics and health
//
// /metrics (Prometheus text format; needs a login like the API) exports
// rocketjob_jobs{state,type}, rocketjob_queue_depth_jobs{priority},
// rocketjob_queue_depth_records{priority},
// rocketjob_oldest_queued_job_age_seconds,
// rocketjob_records_processed_total, rocketjob_records_failed_total,
// rocketjob_records_per_second, rocketjob_server_heartbeat_timestamp_seconds,
// rocketjob_server_heartbeat_age_seconds, rocketjob_server_workers,
// rocketjob_server_busy_workers, rocketjob_server_state, rocketjob_stats_up,
// the HTTP request counts and latencies, and the Go and process
// collectors. /healthz answers 200 while the process runs; /readyz 200
// when the jobs database answers. Both need no login and say nothing else.
//
// Records/s and the processed and failed counters are computed by the UI
// process: every Options.SampleInterval it lists the jobs, counts the
// progress of up to 16 running jobs (which reads their slice collections)
// and adds up what changed since the previous sample, in a ring buffer of
// the last samples. They start at zero when the UI starts, and two UI
// processes each count on their own. /api/stats and /metrics use the last
// sample (at most two sample intervals old). Job lists read only the job
// documents (plus the last sample of running jobs); a job page reads its
// progress afresh.
//
// # Security
//
// Authentication is an access token (Options.Token, from
// $ROCKETJOB_UI_TOKEN on the command line; role admin) and/or users
// (Options.Users, Options.UsersFile). It is required unless Options.Listen
// is a loopback address: NewHandler refuses otherwise. API clients send
// "Authorization: Bearer TOKEN", or HTTP Basic with a user name and
// password; browsers sign in on /login (user empty: the password is the
// token) and get an HttpOnly, SameSite=Strict session cookie scoped to the
// prefix (kept in memory: a restart signs everyone out; Secure when served
// over TLS).
//
// Options.Users holds users in code, with the same roles and hashes. The
// users file has one user per line, "name:role:hash"; blank lines and
// lines starting with # are skipped. role is admin or read-only (read-only
// users see everything and change nothing: 403). hash is the hex SHA-256
// of the password (echo -n 'secret' | sha256sum) or, better, a bcrypt hash
// ($2a$/$2b$/$2y$, e.g. htpasswd -nbB name secret | cut -d: -f2):
//
//	# rocketjob UI users
//	alice:admin:$2y$10$...
//	bob:read-only:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
//
// Every state change from a browser must come from this site
// (Sec-Fetch-Site / Origin / Referer; cross-site requests get 403 csrf)
// and carry the session's CSRF token (form field csrf_token or header
// X-CSRF-Token). Requests with a bearer token need no CSRF token, but every
// state change from another site is refused whatever the credentials.
// Without a login, only requests whose Host is the host of Options.Listen,
// localhost or a loopback address are answered (421 bad_host otherwise:
// DNS rebinding). Failed logins are counted per user name or per token tried,
// never per client address: ten failures of one key in a minute lock that
// key, a wrong token never locks out the right one, and past 100 failures a
// minute each further failure is slowed and answered 429 while correct
// credentials still get in. Every answer carries a strict
// Content-Security-Policy (no inline script or style), nosniff,
// frame-ancestors 'none' and no-store. Encryption keys are never shown:
// only key ids. Put a TLS-terminating proxy in front for remote access
// (it must pass the Host header through).
//
// # Logs
//
// One structured log line (log/slog) per request: method, path, route,
// status, bytes, duration, user, remote address and request id (also sent
// as X-Request-Id). Reads that succeed log at debug level; changes and
// errors at info or above.
package rocketjobweb
