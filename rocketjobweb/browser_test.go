package rocketjobweb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rocketjob-go/rocketjob/rocketjob"
)

// chromiumPath is where Debian's chromium package installs the browser
// (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// artifactsDir is where screenshots go: $ROCKETJOB_ARTIFACTS, else a
// temporary folder of the test.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("ROCKETJOB_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	must(t, os.MkdirAll(dir, 0o755))
	return dir
}

// watchScript records, in every page, CSP violations and script errors.
const watchScript = `window.__problems = [];
document.addEventListener("securitypolicyviolation", function (e) { window.__problems.push("CSP " + e.violatedDirective + " " + e.blockedURI); });
window.addEventListener("error", function (e) { window.__problems.push("error " + e.message); });`

// TestBrowser drives the UI in headless Chromium: sign in, open the
// dashboard, upload a file through the form, watch the job complete
// without reloading the page, download the output, change a job's
// priority and find it in the database, and look at every page on a
// phone-sized screen. Screenshots are saved as test artefacts.
// It runs twice: with the handler at the root of its server (as `rocketjob
// ui` serves it) and mounted under a prefix of an app's mux, where every
// click must stay under the prefix.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: install the Debian chromium package (.ci/run does)", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium)", chromiumPath)
	}
	t.Run("root", func(t *testing.T) { browserWalk(t, "") })
	t.Run("prefix", func(t *testing.T) { browserWalk(t, "/rocketjob") })
}

// browserWalk is TestBrowser with the handler mounted under prefix ("": at
// the root).
func browserWalk(t *testing.T, prefix string) {
	b := setup(t, options{server: true, auth: true, prefix: prefix})
	base := b.ts.URL + prefix
	shots := artifactsDir(t)
	if prefix != "" {
		shots = filepath.Join(shots, "prefix")
		must(t, os.MkdirAll(shots, 0o755))
	}
	downloads := t.TempDir()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	watchdog := time.AfterFunc(100*time.Second, cancel) // never hang the suite
	defer watchdog.Stop()

	// The first action starts the browser: no timeout on it.
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchScript})
		return err
	}))
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	shot := func(name string) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 20*time.Second)
		defer c()
		buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		must(t, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644))
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 30*time.Second)
		defer c()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 10*time.Second)
		defer c()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		must(t, err)
		return v
	}
	text := func(sel string) string {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 10*time.Second)
		defer c()
		v, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		must(t, err)
		return strings.TrimSpace(v)
	}
	checkPage := func(name string) {
		t.Helper()
		if p := eval(`JSON.stringify(window.__problems || [])`); p != "[]" {
			t.Errorf("%s: problems in the page: %s", name, p)
		}
		if p := eval(`location.pathname`); !strings.HasPrefix(p, prefix+"/") {
			t.Errorf("%s: the browser is at %s, outside %s/", name, p, prefix)
		}
	}

	// Sign in with the token and land on the dashboard.
	step("open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("password")))
	shot("01-login")
	step("sign in",
		chromedp.SendKeys(chromedp.ID("password"), testToken),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("live-states")),
	)
	if got := text("#live-servers"); !strings.Contains(got, "test-server") {
		t.Errorf("dashboard servers: %q", got)
	}
	checkPage("dashboard")
	shot("02-dashboard")

	// Upload a file through the form.
	const n = 600
	input := lines(n, func(i int) string { return fmt.Sprintf("record %04d", i) })
	file := filepath.Join(t.TempDir(), "people.txt")
	must(t, os.WriteFile(file, input, 0o644))
	step("fill the upload form",
		chromedp.Navigate(base+"/upload"),
		chromedp.WaitVisible(chromedp.ID("upload-form")),
		chromedp.SetValue(chromedp.ID("type"), "reverse"),
		chromedp.SendKeys(chromedp.CSS(`input[name=description]`), "uploaded from the browser"),
		chromedp.SendKeys(chromedp.CSS(`input[name=slice_size]`), "50"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
	)
	checkPage("upload")
	shot("03-upload")
	step("submit the upload", chromedp.Click(chromedp.ID("upload-submit")), chromedp.WaitVisible(chromedp.ID("job-state")))
	id := text("#job-id")
	job, err := b.client.Get(context.Background(), id)
	must(t, err)
	if job.Type != "reverse" || job.RecordCount != n || job.SliceSize != 50 || job.Description != "uploaded from the browser" || !job.CollectOutput {
		t.Fatalf("uploaded job: %+v", job)
	}

	// Watch it complete: the live region refreshes without a reload.
	step("mark the page", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = "yes"`))
	step("watch the job complete", chromedp.Poll[chromedp.Void](
		`document.getElementById("job-state").textContent.trim() === "completed" && document.getElementById("download-output") !== null`,
		chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	if eval(`String(window.__sameDocument)`) != "yes" || eval(`String(document.body.dataset.refreshed || "")`) == "" {
		t.Fatal("the page was reloaded instead of refreshed in place")
	}
	if got := text("#job-processed"); got != "600" {
		t.Errorf("processed shows %q", got)
	}
	checkPage("job")
	shot("04-job-completed")

	// Download the output through the link.
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	step("download the output",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			yes := true
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes,
			})
			return err
		}),
		chromedp.Click(chromedp.ID("download-output")),
	)
	var downloaded string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			downloaded = filepath.Join(downloads, ev.GUID)
			break
		}
	}
	got, err := os.ReadFile(downloaded)
	must(t, err)
	var want strings.Builder
	for i := 1; i <= n; i++ {
		want.WriteString(reverse(fmt.Sprintf("record %04d", i)) + "\n")
	}
	if string(got) != want.String() {
		t.Fatalf("downloaded output differs: %d bytes, want %d", len(got), want.Len())
	}

	// Change a job's priority through the UI and find it in the database.
	waiting, err := b.client.Enqueue(context.Background(), "nap", nil, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(time.Hour), Description: "waits an hour"})
	must(t, err)
	wid := waiting.ID.Hex()
	step("set the priority",
		chromedp.Navigate(base+"/jobs/"+wid),
		chromedp.WaitVisible(chromedp.ID("priority-input")),
		chromedp.SetValue(chromedp.ID("priority-input"), "7"),
		chromedp.Click(chromedp.ID("set-priority")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if got := text("#job-priority"); got != "7" {
		t.Errorf("the page shows priority %q", got)
	}
	if j, err := b.client.Get(context.Background(), wid); err != nil || j.Priority != 7 {
		t.Fatalf("priority in the database: %+v, %v", j, err)
	}
	checkPage("priority")
	shot("05-priority-changed")

	// The other pages.
	step("jobs page", chromedp.Navigate(base+"/jobs"), chromedp.WaitVisible(chromedp.ID("live-jobs")))
	if got := text("#live-jobs"); !strings.Contains(got, id) || !strings.Contains(got, wid) {
		t.Errorf("jobs page lacks the jobs: %q", got)
	}
	checkPage("jobs")
	shot("06-jobs")
	// Newest first: a job enqueued last at the least urgent priority leads.
	last, err := b.client.Enqueue(context.Background(), "nap", nil, &rocketjob.EnqueueOptions{RunAt: time.Now().Add(time.Hour), Priority: 90, Description: "least urgent"})
	must(t, err)
	lid := last.ID.Hex()
	step("jobs newest first",
		chromedp.Navigate(base+"/jobs"), chromedp.WaitVisible(chromedp.ID("live-jobs")),
		chromedp.SetValue(chromedp.CSS(`select[name="order"]`), "newest"),
		chromedp.Submit(chromedp.CSS(`select[name="order"]`)),
	)
	location := eval(`location.search`)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(location, "order=newest") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // polls the navigation the submit started
		location = eval(`location.search`)
	}
	step("jobs newest first, loaded", chromedp.WaitVisible(chromedp.ID("live-jobs")))
	if got := text("#live-jobs"); !strings.Contains(location, "order=newest") || !strings.Contains(got, lid) || strings.Index(got, lid) > strings.Index(got, wid) {
		t.Errorf("newest first (%s): want %s before %s in %q", location, lid, wid, got)
	}
	step("servers page", chromedp.Navigate(base+"/servers"), chromedp.WaitVisible(chromedp.ID("live-servers")))
	checkPage("servers")
	shot("07-servers")

	// A phone: nothing wider than the screen.
	step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for i, p := range []struct{ name, path string }{
		{"dashboard", "/"}, {"jobs", "/jobs"}, {"job", "/jobs/" + id}, {"upload", "/upload"}, {"servers", "/servers"},
	} {
		step("phone "+p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS("main")))
		if w := eval(`String(document.documentElement.scrollWidth) + "/" + String(window.innerWidth)`); !fitsWidth(w) {
			t.Errorf("phone %s: page is wider than the screen (%s)", p.path, w)
		}
		checkPage("phone " + p.name)
		shot(fmt.Sprintf("%02d-phone-%s", 8+i, p.name))
	}
	t.Logf("screenshots in %s", shots)
}

// fitsWidth reports whether "scrollWidth/innerWidth" has no horizontal overflow.
func fitsWidth(s string) bool {
	var sw, iw int
	if _, err := fmt.Sscanf(s, "%d/%d", &sw, &iw); err != nil {
		return false
	}
	return sw <= iw+1
}
