package rocketjobweb_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/server"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// uiBrowser is a headless Chromium signed in to a test's UI, with the
// helpers of the operations tests.
type uiBrowser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// needChromium skips the test without Debian's chromium (fails under CI).
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: install the Debian chromium package (.ci/run does)", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium)", chromiumPath)
	}
}

// openBrowser starts Chromium and signs in to b's UI with the token.
func openBrowser(t *testing.T, b *bundle) *uiBrowser {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	watchdog := time.AfterFunc(150*time.Second, cancel) // never hang the suite
	t.Cleanup(func() { watchdog.Stop(); cancel(); cancelAlloc() })
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchScript})
		return err
	}))
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	br := &uiBrowser{t: t, ctx: ctx, base: b.ts.URL, shots: artifactsDir(t)}
	br.step("sign in", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), testToken), chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("live-states")))
	return br
}

func (br *uiBrowser) shot(name string) {
	br.t.Helper()
	sctx, c := context.WithTimeout(br.ctx, 20*time.Second)
	defer c()
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		br.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	must(br.t, os.WriteFile(filepath.Join(br.shots, name+".png"), buf, 0o644))
}

func (br *uiBrowser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	br.t.Helper()
	sctx, c := context.WithTimeout(br.ctx, 30*time.Second)
	defer c()
	if err := chromedp.Do(sctx, actions...); err != nil {
		br.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		br.t.Fatalf("%s: %v", what, err)
	}
}

func (br *uiBrowser) eval(expr string) string {
	br.t.Helper()
	sctx, c := context.WithTimeout(br.ctx, 10*time.Second)
	defer c()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
	must(br.t, err)
	return v
}

func (br *uiBrowser) text(sel string) string {
	br.t.Helper()
	sctx, c := context.WithTimeout(br.ctx, 10*time.Second)
	defer c()
	v, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	must(br.t, err)
	return strings.TrimSpace(v)
}

// clearFlash removes the page's messages, so that waiting for .flash after
// a form is sent waits for the next page's message.
var clearFlash = chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".flash").forEach(function (e) { e.remove(); })`)

// poll waits until the JavaScript condition holds in the page.
func (br *uiBrowser) poll(what, cond string) {
	br.t.Helper()
	br.step(what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(25*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
}

// checkPage fails the test on CSP violations or script errors, and on a
// page wider than the window.
func (br *uiBrowser) checkPage(name string) {
	br.t.Helper()
	if p := br.eval(`JSON.stringify(window.__problems || [])`); p != "[]" {
		br.t.Errorf("%s: problems in the page: %s", name, p)
	}
	if w := br.eval(`String(document.documentElement.scrollWidth) + "/" + String(window.innerWidth)`); !fitsWidth(w) {
		br.t.Errorf("%s: page is wider than the window (%s)", name, w)
	}
}

// TestBrowserDirmon: an admin adds a Dirmon entry through the page's form,
// drops a file into its folder, and watches the page list the file as
// taken and archived (refreshed in place) with a link to its job; disables
// the entry with its button; the page fits a phone.
func TestBrowserDirmon(t *testing.T) {
	needChromium(t)
	b := setup(t, options{auth: true})
	root, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	in := filepath.Join(root, "in")
	srv, err := server.New(b.client, &server.Config{
		Name: "dirmon-server", Workers: 1, PollInterval: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		DirmonRoots: []string{root}, DirmonInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})

	br := openBrowser(t, b)
	br.step("fill the Dirmon form",
		chromedp.Navigate(br.base+"/dirmon"), chromedp.WaitVisible(chromedp.ID("dirmon-form")),
		chromedp.SendKeys(chromedp.ID("dirmon-name"), "drop"),
		chromedp.SetValue(chromedp.ID("dirmon-type"), "reverse"),
		chromedp.SendKeys(chromedp.ID("dirmon-folder"), in),
		chromedp.SendKeys(chromedp.ID("dirmon-pattern"), "*.txt"),
		chromedp.SendKeys(chromedp.CSS(`#dirmon-form input[name=priority]`), "5"),
	)
	br.checkPage("dirmon form")
	br.shot("dirmon-01-form")
	// Submitted with Enter in its last field, as a user may: Chromium 156
	// (Debian's in December 2026) focuses but does not press the Add button
	// when chromedp clicks it on this page (it did with the Chromium
	// before; the other pages' buttons still work), and no submit event
	// comes. requestSubmit and Enter both submit.
	br.step("add the entry", chromedp.SendKeys(chromedp.CSS(`#dirmon-form input[name=priority]`), "\r"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-entry="drop"]`)))
	entries, err := sliced.DirmonEntries(context.Background(), b.client)
	must(t, err)
	if len(entries) != 1 || entries[0].Folder != in || entries[0].Type != "reverse" || entries[0].Options.Priority != 5 || !entries[0].Enabled {
		t.Fatalf("entry added by the form: %+v", entries)
	}

	must(t, os.MkdirAll(in, 0o755))
	must(t, os.WriteFile(filepath.Join(in, "a.txt"), []byte("abc\n"), 0o644))
	br.poll("the page shows the file archived", `(document.getElementById("dirmon-files") || {textContent: ""}).textContent.includes("archived")`)
	files, err := sliced.DirmonFiles(context.Background(), b.client, "drop", 0)
	must(t, err)
	if len(files) != 1 || files[0].State != "archived" {
		t.Fatalf("files: %+v", files)
	}
	if got := br.text("#dirmon-files"); !strings.Contains(got, files[0].JobID) || !strings.Contains(got, "a.txt") {
		t.Errorf("files table: %q", got)
	}
	if got := br.text(`tr[data-entry="drop"]`); !strings.Contains(got, "dirmon-server") {
		t.Errorf("entry row lacks its last scan: %q", got)
	}
	br.checkPage("dirmon with a file")
	br.shot("dirmon-02-file-archived")
	br.step("open the file's job", chromedp.Click(chromedp.CSS(`#dirmon-files a`)), chromedp.WaitVisible(chromedp.ID("job-id")))
	if got := br.text("#job-id"); got != files[0].JobID {
		t.Errorf("the link opened job %q, want %s", got, files[0].JobID)
	}

	br.step("disable the entry", chromedp.Navigate(br.base+"/dirmon"), chromedp.WaitVisible(chromedp.CSS(`tr[data-entry="drop"]`)),
		clearFlash, chromedp.Click(chromedp.CSS(`tr[data-entry="drop"] button.secondary`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	entries, err = sliced.DirmonEntries(context.Background(), b.client)
	must(t, err)
	if entries[0].Enabled || !strings.Contains(br.text(`tr[data-entry="drop"]`), "disabled") {
		t.Error("the disable button left the entry enabled")
	}
	br.step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(br.base+"/dirmon"), chromedp.WaitVisible(chromedp.CSS("main")))
	br.checkPage("phone dirmon")
	br.shot("dirmon-03-phone")
}

// TestBrowserFixFailedRecords: on the failures page of a failed job an
// admin corrects one failed record and deletes another, then retries the
// job with the page's button and watches it complete; the output has the
// corrected record in its place and not the deleted one.
func TestBrowserFixFailedRecords(t *testing.T) {
	needChromium(t)
	b := setup(t, options{server: true, auth: true})
	id := failedSquareJob(t, b)
	br := openBrowser(t, b)
	row := func(n string) string { return `#failed-records tr[data-record="` + n + `"] ` }
	br.step("open the failures page from the job page", chromedp.Navigate(br.base+"/jobs/"+id), chromedp.WaitVisible(chromedp.ID("fix-failures")),
		chromedp.Click(chromedp.ID("fix-failures")), chromedp.WaitVisible(chromedp.ID("failed-records")))
	br.checkPage("failures")
	br.shot("failures-01")
	br.step("correct record 2",
		chromedp.SetValue(chromedp.CSS(row("2")+`input[name=record]`), "2"),
		clearFlash,
		chromedp.Click(chromedp.CSS(row("2")+`.fix-form button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := br.text(row("2")); !strings.Contains(got, "corrected to 2") {
		t.Errorf("row 2 after the fix: %q", got)
	}
	br.step("delete record 5",
		chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`),
		chromedp.Click(chromedp.CSS(row("5")+`button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(row("5")+`.fix strong`)))
	if got := br.text(row("5")); !strings.Contains(got, "deleted") {
		t.Errorf("row 5 after the delete: %q", got)
	}
	if got := br.text("#job-history"); !strings.Contains(got, "edit failed record") || !strings.Contains(got, "delete failed record") {
		t.Errorf("history on the page: %q", got)
	}
	br.checkPage("failures fixed")
	br.shot("failures-02-fixed")
	br.step("retry", chromedp.Click(chromedp.ID("retry-fixed")), chromedp.WaitVisible(chromedp.ID("job-state")))
	br.poll("the job completes", `document.getElementById("job-state").textContent.trim() === "completed"`)
	var out strings.Builder
	_, err := sliced.Download(context.Background(), b.client, id, &out)
	must(t, err)
	if out.String() != "1\n4\n9\n16\n" {
		t.Errorf("output: %q", out.String())
	}
}

// TestBrowserJobOptions (issue 18, parity): the upload form sets a job's
// max workers, window, expiry and stop-on-error, and the job page shows
// them; the job page edits a queued job's description and max workers; the enqueue form enqueues a simple job with a cron schedule and
// retries, run-now makes a scheduled job due; pause all and resume all on
// the jobs page change every job of the filtered type.
func TestBrowserJobOptions(t *testing.T) {
	needChromium(t)
	b := setup(t, options{auth: true})
	ctx := context.Background()
	br := openBrowser(t, b)
	file := filepath.Join(t.TempDir(), "in.txt")
	must(t, os.WriteFile(file, []byte("a\nb\n"), 0o644))

	br.step("fill the upload form",
		chromedp.Navigate(br.base+"/upload"), chromedp.WaitVisible(chromedp.ID("upload-form")),
		chromedp.SetValue(chromedp.ID("type"), "reverse"),
		chromedp.SendKeys(chromedp.CSS(`input[name=max_workers]`), "3"),
		chromedp.SendKeys(chromedp.CSS(`input[name=window]`), "22:00,2h,Europe/London"),
		chromedp.SendKeys(chromedp.CSS(`input[name=expires_at]`), "1h"),
		chromedp.SendKeys(chromedp.CSS(`input[name=run_at]`), "1h"),
		chromedp.Click(chromedp.CSS(`input[name=stop_on_error]`)),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
	)
	br.checkPage("upload with options")
	br.step("upload", chromedp.Click(chromedp.ID("upload-submit")), chromedp.WaitVisible(chromedp.ID("job-schedule")))
	id := br.text("#job-id")
	job, err := b.client.Get(ctx, id)
	must(t, err)
	if job.MaxWorkers != 3 || job.WindowStart != "22:00" || job.WindowLocation != "Europe/London" || job.ExpiresAt == nil || !job.StopOnError {
		t.Fatalf("uploaded job: workers %d window %s %s expires %v stop %v", job.MaxWorkers, job.WindowStart, job.WindowLocation, job.ExpiresAt, job.StopOnError)
	}
	if got := br.text("#job-window"); got != "22:00,2h0m0s,Europe/London" {
		t.Errorf("window shown: %q", got)
	}
	if got := br.text("#job-max-workers"); got != "3" {
		t.Errorf("max workers shown: %q", got)
	}
	br.shot("options-01-job")

	br.step("edit the job",
		chromedp.SetValue(chromedp.ID("edit-description"), "edited in the browser"),
		chromedp.SetValue(chromedp.ID("edit-max-workers"), "5"),
		clearFlash,
		chromedp.Click(chromedp.ID("edit-job")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	job, err = b.client.Get(ctx, id)
	must(t, err)
	if job.Description != "edited in the browser" || job.MaxWorkers != 5 || br.text("#job-max-workers") != "5" {
		t.Errorf("after the edit: %q %d", job.Description, job.MaxWorkers)
	}
	br.step("run it now", clearFlash, chromedp.Click(chromedp.ID("run-now")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	job, err = b.client.Get(ctx, id)
	must(t, err)
	if time.Until(job.RunAt) > time.Minute {
		t.Errorf("run-now left run_at at %v", job.RunAt)
	}

	br.step("fill the enqueue form",
		chromedp.Navigate(br.base+"/enqueue"), chromedp.WaitVisible(chromedp.ID("enqueue-form")),
		chromedp.SetValue(chromedp.ID("type"), "nap"),
		chromedp.SendKeys(chromedp.CSS(`input[name="param.ms"]`), "5"),
		chromedp.SendKeys(chromedp.CSS(`input[name=retry_limit]`), "2"),
		chromedp.SendKeys(chromedp.ID("enqueue-cron"), "0 4 * * *"),
		chromedp.SendKeys(chromedp.CSS(`#enqueue-form input[name=description]`), "nightly nap"),
	)
	br.checkPage("enqueue")
	if r := br.eval(`String(document.querySelectorAll("fieldset.params:not([hidden])").length)`); r != "1" {
		t.Errorf("visible parameter sets on the enqueue form: %s", r)
	}
	br.shot("options-02-enqueue")
	br.step("enqueue", chromedp.Click(chromedp.ID("enqueue-submit")), chromedp.WaitVisible(chromedp.ID("job-cron")))
	nap, err := b.client.Get(ctx, br.text("#job-id"))
	must(t, err)
	if nap.Type != "nap" || nap.Cron != "0 4 * * *" || nap.RetryLimit != 2 || nap.Description != "nightly nap" {
		t.Fatalf("enqueued job: %s cron %q retries %d %q", nap.Type, nap.Cron, nap.RetryLimit, nap.Description)
	}

	br.step("pause all reverse jobs",
		chromedp.Navigate(br.base+"/jobs?type=reverse"), chromedp.WaitVisible(chromedp.ID("pause-all")),
		chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`),
		clearFlash, chromedp.Click(chromedp.ID("pause-all")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	job, err = b.client.Get(ctx, id)
	must(t, err)
	nap, err = b.client.Get(ctx, nap.ID.Hex())
	must(t, err)
	if job.State != rocketjob.StatePaused || nap.State != rocketjob.StateQueued {
		t.Errorf("after pause all of reverse: reverse job %s, nap %s", job.State, nap.State)
	}
	br.step("resume all", clearFlash, chromedp.Click(chromedp.ID("resume-all")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if job, err = b.client.Get(ctx, id); err != nil || job.State != rocketjob.StateQueued {
		t.Errorf("after resume all: %v %v", job.State, err)
	}
	br.checkPage("jobs")
	br.step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, p := range []string{"/enqueue", "/upload", "/jobs/" + id} {
		br.step("phone "+p, chromedp.Navigate(br.base+p), chromedp.WaitVisible(chromedp.CSS("main")))
		br.checkPage("phone " + p)
	}
}
