package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"
)

// benchApp is the command line: the flags of the former "rocketjob bench".
func benchApp() *cli.App {
	return &cli.App{
		Name:  "bench",
		Usage: "run the batch benchmark (rocketjob against the raw-driver baseline on the same database), or with --simple the simple-jobs one",
		UsageText: usageText("go -C bench run . [--n N] [--workers W] [--servers S] [--processes] [--slice-size S] [--no-sealed] [--trace] [--uri URI] [--river-dsn DSN]\n"+
			"   go -C bench run . --servers S[,S...] --workers W[,W...] [--processes] [--rounds R] [--n N] [--slice-size S] [--uri URI]\n"+
			"   go -C bench run . --simple [--n N] [--workers W] [--servers S[,S...]] [--backlog B] [--trace-calls] [--uri URI] [--river-dsn DSN]",
			"go -C bench run .                    # 1,000,000 lines on a temporary embedded database",
			"go -C bench run . --n 100000 --trace # fewer lines, with every database call counted per phase",
			"go -C bench run . --processes --servers 1,2,4 --workers 4,8 # scale-out curve: 1, 2 and 4 server processes sharing 4, then 8 workers",
			"go -C bench run . --processes --workers 1,2,4,8,16 --n 300000  # one server process, 1 to 16 workers",
			"go -C bench run . --n 100000 --river-dsn postgres://postgres@127.0.0.1:54329/riverbench # River as a peer",
			"go -C bench run . --simple           # 100,000 no-op simple jobs: EnqueueMany, then 1 server x 8 workers, against a raw-driver baseline",
			"go -C bench run . --simple --n 20000 --servers 1,2 # one run with 1 server, one with 2, side by side",
			"go -C bench run . --simple --n 20000 --backlog 1000000 # the same behind a million queued jobs of lower priority",
			"go -C bench run . --simple --servers 2 --workers 4 --river-dsn postgres://... # 2 servers; River one job per record beside it"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: DefaultN, Usage: "`N` lines of the batch workload (--simple: jobs)", DefaultText: "1000000; --simple: 100000"},
			&cli.IntSliceFlag{Name: "workers", Usage: "`W` server workers, all servers together (and baseline goroutines); a list (1,2,4,8,16) runs the batch scale-out curve", DefaultText: "4; --simple: 8 per server"},
			&cli.IntFlag{Name: "slice-size", Value: DefaultSliceSize, Usage: "`S` records per slice"},
			&cli.BoolFlag{Name: "no-sealed", Usage: "skip the encrypted+compressed run"},
			&cli.StringFlag{Name: "river-dsn", Usage: "also run River (one job per record) on the PostgreSQL `DSN` (postgres://...); see scripts/bench-peers.sh"},
			&cli.BoolFlag{Name: "trace", Usage: "count and time every database call per phase (adds latency to both sides)"},
			&cli.BoolFlag{Name: "simple", Usage: "the simple-jobs workload: N no-op jobs enqueued with EnqueueMany, then run by the servers; every job must run exactly once"},
			&cli.IntSliceFlag{Name: "servers", Usage: "`S` servers, each in this process with its own client (connections) or with --processes a process of its own, sharing the workers (batch) or with --workers each (--simple); a list (1,2,4) runs rocketjob once per count (--simple) or the batch scale-out curve", DefaultText: "1"},
			&cli.IntFlag{Name: "rounds", Value: DefaultRounds, Usage: "batch scale-out curve: run each point `R` times, odd rounds in order and even rounds in reverse order (drift cancels)"},
			&cli.BoolFlag{Name: "processes", Usage: "batch: run each server as an operating-system process of its own (this program re-executed), not in this process; the database, upload and download stay in this process"},
			&cli.IntFlag{Name: "backlog", Usage: "with --simple: `B` more no-op jobs of another type queued at a lower priority before each rocketjob run (not timed): enqueue, selection and listings with a big queue"},
			&cli.BoolFlag{Name: "trace-calls", Usage: "with --simple: count and time every database call per job of each phase, through a proxy (adds latency to every run)"},
			&cli.StringFlag{Name: "uri", Usage: "database server `URI` (default: a temporary embedded database)", EnvVars: []string{"ROCKETJOB_URI"}},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the rocketjob side to `FILE` (and of the baseline to FILE.baseline; --simple: of the further server counts to FILE.sS); with the embedded database it includes FerretDB and SQLite"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			logf := func(format string, a ...any) {
				fmt.Fprintf(c.App.ErrWriter, format+"\n", a...)
			}
			if c.Bool("simple") {
				for _, f := range []string{"slice-size", "no-sealed", "trace", "processes", "rounds"} {
					if c.IsSet(f) {
						return usagef("--%s is an option of the batch benchmark, not of --simple", f)
					}
				}
				cfg := SimpleConfig{ServerCounts: c.IntSlice("servers"), Backlog: c.Int("backlog"), Trace: c.Bool("trace-calls"), URI: c.String("uri"), RiverDSN: c.String("river-dsn"), CPUProfile: c.String("cpuprofile"), Logf: logf}
				if c.IsSet("n") {
					cfg.N = c.Int("n")
				}
				if c.IsSet("workers") {
					list := c.IntSlice("workers")
					if len(list) != 1 {
						return usagef("--workers: --simple takes one count (got %v)", list)
					}
					cfg.Workers = list[0]
				}
				if cfg.Backlog < 0 {
					return usagef("--backlog must not be negative")
				}
				if cfg.N < 0 || cfg.Workers < 0 || (c.IsSet("n") && cfg.N == 0) || (c.IsSet("workers") && cfg.Workers == 0) {
					return usagef("--n and --workers must be at least 1")
				}
				for _, s := range cfg.ServerCounts {
					if s < 1 || s > maxServers {
						return usagef("--servers: each count must be between 1 and %d (got %d)", maxServers, s)
					}
				}
				rep, err := RunSimple(c.Context, cfg)
				if rep != nil && rep.Process > 0 {
					fmt.Fprint(out(c), rep.String())
				}
				return err
			}
			for _, f := range []string{"trace-calls", "backlog"} {
				if c.IsSet(f) {
					return usagef("--%s goes with --simple", f)
				}
			}
			servers, workers := c.IntSlice("servers"), c.IntSlice("workers")
			for _, v := range append(slices.Clone(servers), workers...) {
				if v < 1 {
					return usagef("--servers and --workers: each count must be at least 1 (got %d)", v)
				}
			}
			if len(servers) > 1 || len(workers) > 1 {
				for _, f := range []string{"trace", "river-dsn", "cpuprofile"} {
					if c.IsSet(f) {
						return usagef("--%s is not an option of the scale-out curve (lists in --servers or --workers)", f)
					}
				}
				cfg := CurveConfig{N: c.Int("n"), SliceSize: c.Int("slice-size"), URI: c.String("uri"), Logf: logf,
					Servers: servers, Workers: workers, Processes: c.Bool("processes"), Rounds: c.Int("rounds")}
				if len(curvePoints(cfg.Servers, cfg.withDefaults().Workers)) == 0 {
					return usagef("--servers %v and --workers %v: no point has servers <= workers", servers, workers)
				}
				rep, err := RunCurve(c.Context, cfg)
				if err != nil {
					return err
				}
				fmt.Fprint(out(c), rep.String())
				return nil
			}
			if c.IsSet("rounds") {
				return usagef("--rounds goes with the scale-out curve (lists in --servers or --workers)")
			}
			nServers, nWorkers := 1, DefaultWorkers
			if len(servers) == 1 {
				nServers = servers[0]
			}
			if len(workers) == 1 {
				nWorkers = workers[0]
			}
			rep, err := Run(c.Context, Config{
				N:          c.Int("n"),
				Workers:    nWorkers,
				Servers:    nServers,
				Processes:  c.Bool("processes"),
				SliceSize:  c.Int("slice-size"),
				URI:        c.String("uri"),
				Sealed:     !c.Bool("no-sealed"),
				Trace:      c.Bool("trace"),
				RiverDSN:   c.String("river-dsn"),
				CPUProfile: c.String("cpuprofile"),
				Logf:       logf,
			})
			if err != nil {
				return err
			}
			fmt.Fprint(out(c), rep.String())
			return nil
		},
	}
}
