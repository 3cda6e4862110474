package rocketjobweb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/rocketjobweb"
)

// Mount Mission Control in your own server under /rocketjob/, next to
// your own pages. Without Options.Listen the handler cannot know where it
// is served, so it needs a login: here an access token (users work too).
func Example_mount() {
	ctx := context.Background()
	// A client on a throwaway database; yours comes from rocketjob.NewClient.
	db, err := rocketjobtest.Open(ctx, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	token := "0123456789abcdef0123456789abcdef" // e.g. os.Getenv("ROCKETJOB_UI_TOKEN")

	ui, err := rocketjobweb.NewHandler(db.Client, &rocketjobweb.Options{Prefix: "/rocketjob", Token: token})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ui.Close() // once the server has stopped: it ends the statistics sampler

	mux := http.NewServeMux()
	mux.Handle("/rocketjob/", ui) // no http.StripPrefix: the handler strips its prefix
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "my app") })
	srv := httptest.NewServer(mux) // your http.Server
	defer srv.Close()

	show := func(path, token string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		if loc := res.Header.Get("Location"); loc != "" {
			fmt.Println("GET", path, res.StatusCode, "->", loc)
			return
		}
		fmt.Println("GET", path, res.StatusCode)
	}
	show("/", "")
	show("/rocketjob/jobs", "")           // a browser signs in first, under the prefix
	show("/rocketjob/api/jobs", token)    // API clients send the token
	show("/rocketjob/assets/app.css", "") // assets need no login
	show("/rocketjob/healthz", "")        // nor do the health checks
	// Output:
	// GET / 200
	// GET /rocketjob/jobs 303 -> /rocketjob/login?next=%2Fjobs
	// GET /rocketjob/api/jobs 200
	// GET /rocketjob/assets/app.css 200
	// GET /rocketjob/healthz 200
}
